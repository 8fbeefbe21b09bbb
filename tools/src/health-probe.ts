/**
 * A grpc.health.v1 probe that speaks the platform's mTLS: it presents an X509-SVID, verifies the
 * server's chain against the trust bundle and accepts the server only when its SPIFFE ID is the
 * expected one. Container health checks (Docker Compose) and Kubernetes exec probes run it,
 * because neither Docker's nor the kubelet's built-in gRPC check can present a client certificate.
 *
 * ```
 * node tools/src/health-probe.ts --addr 127.0.0.1:50052 --cert svid.pem --key svid-key.pem \
 *   --ca bundle.pem --expect-spiffe-id spiffe://auth.local/ns/auth/sa/token [--service <name>] \
 *   [--timeout-ms 3000]
 * ```
 *
 * Exit status 0 when the answer is SERVING; 1 otherwise, with a one-line reason on stderr.
 * (Docker reserves exit status 2, so usage errors also exit 1.)
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { PeerCertificate } from "node:tls";
import { parseArgs } from "node:util";

import { Client, credentials, Metadata, status as Status } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";

/** Options for {@link probeHealth}. PEM inputs are the file contents, not paths. */
export interface HealthProbeOptions {
  /** `host:port` of the server to probe, e.g. `127.0.0.1:50052`. */
  readonly addr: string;
  /** PEM certificate (chain) the probe presents as its client X509-SVID. */
  readonly cert: string | Buffer;
  /** PEM private key (PKCS#8 or SEC1) matching {@link HealthProbeOptions.cert}. */
  readonly key: string | Buffer;
  /** PEM trust bundle; the server's chain must verify against it. */
  readonly ca: string | Buffer;
  /** The SPIFFE ID the server's certificate must carry as its only URI SAN. */
  readonly expectSpiffeId: string;
  /** Health service name to ask about; `""` (the default) means the server as a whole. */
  readonly service?: string;
  /** Deadline for the whole probe (connect, handshake, call) in milliseconds; default 3000. */
  readonly timeoutMs?: number;
}

/**
 * Outcome of {@link probeHealth}. `ok` is true only for an answer of SERVING; otherwise `reason`
 * is a one-line explanation and `status` is the serving status when the server answered at all.
 */
export type HealthProbeResult =
  | { readonly ok: true; readonly status: "SERVING" }
  | { readonly ok: false; readonly status?: string; readonly reason: string };

/** Default deadline of one probe, in milliseconds. */
export const DEFAULT_PROBE_TIMEOUT_MS = 3000;

/** The Check method of grpc.health.v1.Health, with its (de)serialisers. */
const checkMethod =
  healthService["Check"] ??
  ((): never => {
    throw new Error("grpc-health-check does not define grpc.health.v1.Health/Check");
  })();

/**
 * SPIFFE ID syntax (SPIFFE-ID §2): `spiffe://` + trust domain of `[a-z0-9._-]` + a path of
 * segments of `[A-Za-z0-9._-]`. A workload ID needs a non-root path (X509-SVID §3.1).
 */
const SPIFFE_WORKLOAD_ID = /^spiffe:\/\/[a-z0-9._-]+(?:\/[A-Za-z0-9._-]+)+$/;

/**
 * Calls grpc.health.v1.Health/Check once over mTLS and reports whether the server is SERVING.
 *
 * The server is accepted only when its certificate chains to `ca` and is an X509-SVID for
 * `expectSpiffeId`: exactly one URI SAN, equal to the expected ID, on a non-CA certificate.
 * Hostname verification is not performed (SPIFFE peers are named by URI SAN, not DNS), so `addr`
 * may be an IP address or any DNS name that reaches the server.
 *
 * Never rejects: every failure (bad input, unreadable PEM, refused connection, handshake or
 * identity failure, RPC error, deadline) resolves to `{ ok: false, reason }`.
 */
export async function probeHealth(opts: HealthProbeOptions): Promise<HealthProbeResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const service = opts.service ?? "";
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    return fail(
      `invalid timeout ${String(opts.timeoutMs)}: expected a positive integer of milliseconds`,
    );
  }
  if (!SPIFFE_WORKLOAD_ID.test(opts.expectSpiffeId)) {
    return fail(`invalid expected SPIFFE ID ${JSON.stringify(opts.expectSpiffeId)}`);
  }
  if (opts.addr.trim() === "") {
    return fail("invalid address: empty");
  }

  // The handshake error that grpc-js reports is generic ("No connection established"); keep the
  // identity check's own message so the reason names the mismatch.
  let identityError: Error | undefined;
  const checkServerIdentity = (_hostname: string, cert: PeerCertificate): Error | undefined => {
    try {
      identityError = verifyServerSvid(cert, opts.expectSpiffeId);
    } catch (error) {
      // Throwing here would escape into the TLS socket's event handler; refuse instead.
      identityError = new Error(`unreadable server certificate: ${messageOf(error)}`);
    }
    return identityError;
  };

  let client: Client;
  try {
    const channelCredentials = credentials.createSsl(
      toBuffer(opts.ca),
      toBuffer(opts.key),
      toBuffer(opts.cert),
      // Replaces Node's hostname check entirely: grpc-js passes this function to tls.connect,
      // which calls it only after the chain has verified against `ca` (rejectUnauthorized
      // stays at its default, true).
      { checkServerIdentity },
    );
    client = new Client(opts.addr, channelCredentials, {
      // A fixed non-IP SNI name: Node warns (DEP0123) when the TLS server name is an IP
      // literal, and that warning would break the one-line stderr contract. Servers do not use
      // SNI, and the identity check above ignores the host name.
      "grpc.ssl_target_name_override": "spiffe-peer",
    });
  } catch (error) {
    return fail(`cannot load credentials: ${messageOf(error)}`);
  }

  try {
    const response = await new Promise<{ status?: unknown }>((resolve, reject) => {
      client.makeUnaryRequest(
        checkMethod.path,
        checkMethod.requestSerialize,
        checkMethod.responseDeserialize as (bytes: Buffer) => { status?: unknown },
        { service },
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error, value) => {
          if (error) reject(error);
          else resolve(value ?? {});
        },
      );
    });
    const servingStatus = typeof response.status === "string" ? response.status : "UNKNOWN";
    if (servingStatus === "SERVING") return { ok: true, status: "SERVING" };
    return {
      ok: false,
      status: servingStatus,
      reason: `${describeService(service)} is ${servingStatus}`,
    };
  } catch (error) {
    if (identityError) return fail(`server identity rejected: ${identityError.message}`);
    return fail(describeCallError(error as ServiceError, timeoutMs));
  } finally {
    client.close();
  }
}

/**
 * The X509-SVID leaf checks a client applies to a server certificate that has already chained to
 * the trust bundle. Returns an Error naming the problem, or undefined to accept.
 */
function verifyServerSvid(peer: PeerCertificate, expectSpiffeId: string): Error | undefined {
  if (!peer.raw) return new Error("server presented no certificate");
  const cert = new X509Certificate(peer.raw);
  // X509-SVID §5.2: "the validator MUST ensure that the CA field in the basic constraints
  // extension is set to false".
  if (cert.ca) return new Error("server certificate is a CA certificate, not a leaf X509-SVID");
  const uris = uriSans(cert.subjectAltName);
  // X509-SVID §2: "Validators encountering an SVID containing more than one URI SAN MUST reject
  // the SVID."
  if (uris.length !== 1) {
    return new Error(
      `expected exactly one URI SAN (${expectSpiffeId}), found ${uris.length}` +
        (uris.length > 0 ? `: ${uris.join(", ")}` : ""),
    );
  }
  const [actual] = uris;
  if (actual !== expectSpiffeId) {
    return new Error(`SPIFFE ID mismatch: expected ${expectSpiffeId}, got ${actual}`);
  }
  return undefined;
}

/**
 * The URI entries of Node's `subjectAltName` string (`"DNS:a, URI:spiffe://x/y"`). Node quotes a
 * value as a JSON string when it contains characters such as `,` or `"` (CVE-2021-44532 fix), so
 * a plain split on ", " would be unsafe.
 */
function uriSans(subjectAltName: string | undefined): string[] {
  const uris: string[] = [];
  let rest = subjectAltName ?? "";
  while (rest.length > 0) {
    const colon = rest.indexOf(":");
    if (colon < 0) break;
    const type = rest.slice(0, colon);
    rest = rest.slice(colon + 1);
    let value: string;
    if (rest.startsWith('"')) {
      const end = closingQuote(rest);
      value = JSON.parse(rest.slice(0, end + 1)) as string;
      rest = rest.slice(end + 1);
    } else {
      const comma = rest.indexOf(", ");
      value = comma < 0 ? rest : rest.slice(0, comma);
      rest = comma < 0 ? "" : rest.slice(comma);
    }
    if (type === "URI") uris.push(value);
    if (rest.startsWith(", ")) rest = rest.slice(2);
  }
  return uris;
}

/** Index of the quote that closes the JSON string starting at index 0 of `s`. */
function closingQuote(s: string): number {
  for (let i = 1; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === '"') return i;
  }
  throw new Error("unterminated quoted subjectAltName value");
}

function describeService(service: string): string {
  return service === "" ? "server" : `service ${JSON.stringify(service)}`;
}

function describeCallError(error: ServiceError, timeoutMs: number): string {
  const code = Status[error.code] ?? String(error.code);
  const details = oneLine(error.details || error.message);
  if (error.code === Status.DEADLINE_EXCEEDED)
    return `no answer within ${timeoutMs} ms (${code}: ${details})`;
  return `Health/Check failed: ${code}: ${details}`;
}

function fail(reason: string): HealthProbeResult {
  return { ok: false, reason: oneLine(reason) };
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function toBuffer(pem: string | Buffer): Buffer {
  return typeof pem === "string" ? Buffer.from(pem) : pem;
}

/**
 * Parses the command line, reads the PEM files and runs {@link probeHealth}. Returns the process
 * exit status (0 SERVING, 1 anything else) after writing a one-line reason to `stderr` on failure.
 *
 * @internal exported for the CLI entry point below and for tests.
 */
export async function runHealthProbeCli(
  argv: readonly string[],
  stderr: { write(text: string): unknown } = process.stderr,
): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        addr: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        ca: { type: "string" },
        "expect-spiffe-id": { type: "string" },
        service: { type: "string" },
        "timeout-ms": { type: "string" },
      },
    }));
  } catch (error) {
    stderr.write(`health-probe: ${oneLine(messageOf(error))}\n`);
    return 1;
  }
  const missing = (["addr", "cert", "key", "ca", "expect-spiffe-id"] as const).filter(
    (name) => !values[name],
  );
  if (missing.length > 0) {
    stderr.write(
      `health-probe: missing required option(s): ${missing.map((name) => `--${name}`).join(", ")}\n`,
    );
    return 1;
  }
  const timeoutText = values["timeout-ms"];
  const timeoutMs = timeoutText === undefined ? undefined : Number(timeoutText);

  let pems: [Buffer, Buffer, Buffer];
  try {
    pems = await Promise.all([readFile(values.cert!), readFile(values.key!), readFile(values.ca!)]);
  } catch (error) {
    stderr.write(`health-probe: ${oneLine(messageOf(error))}\n`);
    return 1;
  }
  const [cert, key, ca] = pems;

  const result = await probeHealth({
    addr: values.addr!,
    cert,
    key,
    ca,
    expectSpiffeId: values["expect-spiffe-id"]!,
    ...(values.service === undefined ? {} : { service: values.service }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  if (result.ok) return 0;
  stderr.write(`health-probe: ${values.addr}: ${result.reason}\n`);
  return 1;
}

if (import.meta.main) {
  // Exit explicitly: a health check must end promptly even if a library left a handle open.
  process.exit(await runHealthProbeCli(process.argv.slice(2)));
}
