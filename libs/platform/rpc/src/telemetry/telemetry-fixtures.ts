import * as grpc from "@grpc/grpc-js";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import type { ClientRequest, RpcKind, ServerRequest } from "../interceptor.ts";
import { methodPath } from "../handlers.ts";

/**
 * @internal Hand-built chain requests for interceptor unit tests: a call of TokenService's
 * `method` (by protobuf name), with fresh metadata.
 */
export function serverRequest(
  method: string,
  options: { kind?: RpcKind; header?: Record<string, string> } = {},
): ServerRequest {
  const descriptor = TokenService.methods.find((m) => m.name === method);
  if (descriptor === undefined) throw new Error(`no method ${method}`);
  const header = new grpc.Metadata();
  for (const [key, value] of Object.entries(options.header ?? {})) header.set(key, value);
  return {
    service: TokenService,
    method: descriptor,
    path: methodPath(TokenService, method),
    kind: options.kind ?? "unary",
    deadlineMs: Number.POSITIVE_INFINITY,
    signal: new AbortController().signal,
    header,
    message: {},
    peerCertificate: () => undefined,
  };
}

/** @internal A client request of TokenService's `method` to `target`. */
export function clientRequest(
  target: string,
  method: string,
  options: { kind?: RpcKind } = {},
): ClientRequest {
  const {
    service,
    method: descriptor,
    path,
    kind,
    deadlineMs,
    signal,
    header,
  } = serverRequest(method, options);
  return {
    service,
    method: descriptor,
    path,
    kind,
    deadlineMs,
    signal,
    header,
    message: {},
    target,
  };
}

/** @internal A stream of `count` messages that fails with `error` at the end when given. */
export async function* messages(count: number, error?: unknown): AsyncIterable<{ n: number }> {
  for (let n = 0; n < count; n++) yield { n };
  if (error !== undefined) throw error;
}

/** @internal Reads a whole stream. */
export async function drain(stream: unknown): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const item of stream as AsyncIterable<unknown>) out.push(item);
  return out;
}

/**
 * @internal Parses Prometheus text exposition into `name{label="value",...}` → value, with the
 * labels sorted by name so tests can look series up regardless of order.
 */
export function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparseable exposition line: ${line}`);
    const [, name, , labelText, value] = match as unknown as [
      string,
      string,
      string,
      string | undefined,
      string,
    ];
    const labels = [...(labelText ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map(([, key, raw]) => `${key}="${raw}"`)
      .sort();
    series.set(labels.length === 0 ? name : `${name}{${labels.join(",")}}`, Number(value));
  }
  return series;
}

/** @internal A series key as {@link parseExposition} makes them. */
export function seriesKey(name: string, labels: Record<string, string>): string {
  const parts = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort();
  return parts.length === 0 ? name : `${name}{${parts.join(",")}}`;
}
