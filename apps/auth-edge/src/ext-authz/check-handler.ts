import type { DescService } from "@bufbuild/protobuf";
import { defineService, type CallContext, type ServiceRegistration } from "@authplat/rpc";
import { AUTHORIZATION_SERVICE } from "./envoy-protos.ts";
import type { CheckInput, CheckOutcome, ExtAuthzService } from "./ext-authz-service.ts";
import { httpAnswerFor, type HttpAnswerOptions, type HttpHeader } from "./http-answer.ts";

/**
 * The parts of `envoy.service.auth.v3.CheckRequest` read here, as protobuf-es decodes them
 * (the service descriptor is built at run time, so there are no generated types).
 */
export interface CheckRequestShape {
  readonly attributes?: {
    readonly request?: { readonly http?: HttpRequestShape };
    readonly contextExtensions: Readonly<Record<string, string>>;
  };
}

/** `envoy.service.auth.v3.AttributeContext.HttpRequest`, the parts read here. */
interface HttpRequestShape {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  /** Lower-case names; Envoy joins repeated headers with commas. */
  readonly headers: Readonly<Record<string, string>>;
  /** Sent instead of `headers` when the filter sets `encode_raw_headers`. */
  readonly headerMap?: {
    readonly headers: readonly {
      readonly key: string;
      readonly value: string;
      readonly rawValue: Uint8Array;
    }[];
  };
}

// google.rpc.Code.OK; the denial codes come with the HTTP answer.
const RPC_OK = 0;
// envoy.config.core.v3.HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

function authorizationHeader(request: HttpRequestShape | undefined): string | undefined {
  if (request === undefined) return undefined;
  const direct = request.headers["authorization"];
  if (direct !== undefined) return direct;
  // With `encode_raw_headers: true` Envoy sends header_map instead, duplicates uncombined;
  // joining them the way `headers` would makes two Authorization headers malformed, not a choice.
  const raw = (request.headerMap?.headers ?? []).filter(
    (h) => h.key.toLowerCase() === "authorization",
  );
  if (raw.length === 0) return undefined;
  return raw
    .map((h) => (h.rawValue.length > 0 ? Buffer.from(h.rawValue).toString("latin1") : h.value))
    .join(",");
}

/** Decodes the parts of a CheckRequest that {@link ExtAuthzService.check} needs. */
export function checkInputOf(request: CheckRequestShape): CheckInput {
  const http = request.attributes?.request?.http;
  return {
    authorization: authorizationHeader(http),
    contextExtensions: request.attributes?.contextExtensions ?? {},
    method: http?.method ?? "",
    path: http?.path ?? "",
    host: http?.host ?? "",
  };
}

function headerOptions(headers: readonly HttpHeader[]) {
  return headers.map((header) => ({
    header: { key: header.key, value: header.value },
    appendAction: OVERWRITE_IF_EXISTS_OR_ADD,
  }));
}

function logDecision(
  context: CallContext,
  httpRequestId: string,
  outcome: CheckOutcome,
  input: CheckInput,
): void {
  const route = {
    httpRequestId,
    action: input.contextExtensions["authplat.action"],
    resource: input.contextExtensions["authplat.resource"],
  };
  // Never the token: only what was decided and why. Allowed requests are the hot path, so
  // they log at debug; refusals at info.
  if (outcome.kind === "allowed") {
    context.logger.debug(
      {
        ...route,
        decision: "allow",
        clientId: outcome.claims.clientId,
        tokenId: outcome.claims.tokenId,
        policyIds: outcome.policyIds,
      },
      "ext_authz decision",
    );
  } else if (outcome.kind === "unauthenticated") {
    context.logger.info(
      { ...route, decision: "unauthenticated", reason: outcome.reason },
      "ext_authz decision",
    );
  } else {
    context.logger.info(
      {
        ...route,
        decision: "forbidden",
        reason: outcome.reason,
        policyIds: outcome.policyIds,
      },
      "ext_authz decision",
    );
  }
}

/**
 * Serves Envoy's `envoy.service.auth.v3.Authorization/Check` (`service` from
 * `loadEnvoyAuthorizationProtos`): decodes the request, asks `extAuthz` for the decision and
 * encodes Envoy's answer: OK with the identity headers, or a denied response with 401/403.
 * Failures to decide (UNAVAILABLE, misconfigured routes) are gRPC errors, which Envoy with
 * `failure_mode_allow: false` turns into a refusal with its `status_on_error`.
 */
export function extAuthzRegistration(deps: {
  readonly service: DescService;
  readonly extAuthz: ExtAuthzService;
  readonly answers: HttpAnswerOptions;
}): ServiceRegistration {
  if (deps.service.typeName !== AUTHORIZATION_SERVICE) {
    throw new Error(`expected ${AUTHORIZATION_SERVICE}, got ${deps.service.typeName}`);
  }
  const check = async (request: CheckRequestShape, context: CallContext) => {
    const input = { ...checkInputOf(request), caller: context.caller.toString() };
    const outcome = await deps.extAuthz.check(input, context.signal);
    logDecision(context, request.attributes?.request?.http?.id ?? "", outcome, input);
    const answer = httpAnswerFor(outcome, deps.answers);
    if (answer.allowed) {
      return {
        status: { code: RPC_OK },
        httpResponse: {
          case: "okResponse",
          value: {
            headers: headerOptions(answer.headersToSet),
            headersToRemove: [...answer.headersToRemove],
          },
        },
      };
    }
    return {
      status: { code: answer.rpcCode },
      httpResponse: {
        case: "deniedResponse",
        value: { status: { code: answer.httpStatus }, headers: headerOptions(answer.headers) },
      },
    };
  };
  // The descriptor is untyped (built at run time), so the handler map cannot be checked
  // against it; CheckRequestShape states what it relies on.
  return defineService(deps.service, { check } as never);
}
