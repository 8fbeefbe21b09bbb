import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { defineService, unimplementedHandlers, type ServiceRegistration } from "@authplat/rpc";
import {
  AuthEdgeService,
  RejectionReason as ProtoRejectionReason,
  type TokenClaimsSchema,
} from "@authplat/contracts/auth/auth_edge/v1";
import { ServiceError } from "@authplat/errors";
import type { TokenAuthorizer } from "./authorization/token-authorizer.ts";
import { TokenIntrospector, type RefreshTokenDescription } from "./tokens/token-introspector.ts";
import type { RejectionReason, TokenValidator, ValidatedClaims } from "./tokens/token-validator.ts";

const REASON: Record<RejectionReason, ProtoRejectionReason> = {
  MALFORMED: ProtoRejectionReason.MALFORMED,
  ALGORITHM_NOT_ALLOWED: ProtoRejectionReason.ALGORITHM_NOT_ALLOWED,
  UNKNOWN_KEY: ProtoRejectionReason.UNKNOWN_KEY,
  BAD_SIGNATURE: ProtoRejectionReason.BAD_SIGNATURE,
  EXPIRED: ProtoRejectionReason.EXPIRED,
  NOT_YET_VALID: ProtoRejectionReason.NOT_YET_VALID,
  WRONG_ISSUER: ProtoRejectionReason.WRONG_ISSUER,
  WRONG_AUDIENCE: ProtoRejectionReason.WRONG_AUDIENCE,
  WRONG_TYPE: ProtoRejectionReason.WRONG_TYPE,
  MISSING_CLAIM: ProtoRejectionReason.MISSING_CLAIM,
  INSUFFICIENT_SCOPE: ProtoRejectionReason.INSUFFICIENT_SCOPE,
  REVOKED: ProtoRejectionReason.REVOKED,
};

/** The protobuf form of verified claims, with the caller's SPIFFE ID. */
function claimsMessage(
  claims: ValidatedClaims,
  caller: string,
): MessageInitShape<typeof TokenClaimsSchema> {
  return {
    issuer: claims.issuer,
    subject: claims.subject,
    audience: [...claims.audience],
    expiresAt: timestampFromMs(claims.expiresAt * 1000),
    issuedAt: timestampFromMs(claims.issuedAt * 1000),
    ...(claims.notBefore === undefined
      ? {}
      : { notBefore: timestampFromMs(claims.notBefore * 1000) }),
    tokenId: claims.tokenId,
    clientId: claims.clientId,
    scopes: [...claims.scopes],
    sessionId: claims.sessionId ?? "",
    keyId: claims.keyId,
    algorithm: claims.algorithm,
    callerSpiffeId: caller,
    roles: [...claims.roles],
    tenant: claims.tenant ?? "",
    acr: claims.acr ?? "",
    amr: [...claims.amr],
    ...(claims.authTime === undefined ? {} : { authTime: timestampFromMs(claims.authTime * 1000) }),
  };
}

/**
 * The protobuf form of an active refresh token's description: what RFC 7662 can say of an opaque
 * token (issuer, subject, client, scopes, session, roles, tenant, its own issue and expiry
 * times); the JWT-only fields stay empty.
 */
function refreshClaimsMessage(
  description: RefreshTokenDescription,
  issuer: string,
  caller: string,
): MessageInitShape<typeof TokenClaimsSchema> {
  return {
    issuer,
    subject: description.subject,
    expiresAt: timestampFromMs(description.expiresAtMs),
    issuedAt: timestampFromMs(description.issuedAtMs),
    clientId: description.clientId,
    scopes: [...description.scopes],
    sessionId: description.sessionId ?? "",
    callerSpiffeId: caller,
    roles: [...description.roles],
    tenant: description.tenant ?? "",
  };
}

function rejectionMessage(reason: RejectionReason, message: string) {
  return { case: "rejection" as const, value: { reason: REASON[reason], message } };
}

/**
 * The AuthEdgeService registration: protobuf in, one call of the domain logic, protobuf out. Who
 * may call each RPC is `apps/auth-edge/src/access-rules.json` (and `ALLOWED_CALLERS`), passed to
 * the server as `accessRules`.
 */
export function authEdgeRegistration(deps: {
  readonly validator: TokenValidator;
  /** The issuer named in refresh-token introspection answers. */
  readonly issuer: string;
  /** AuthorizeToken's logic; without it AuthorizeToken fails UNAVAILABLE (never allows). */
  readonly authorizer?: TokenAuthorizer;
  /** IntrospectToken's logic; default one over `validator`. */
  readonly introspector?: TokenIntrospector;
}): ServiceRegistration {
  const introspector = deps.introspector ?? new TokenIntrospector({ validator: deps.validator });
  return defineService(AuthEdgeService, {
    ...unimplementedHandlers(AuthEdgeService),
    async validateToken(request, context) {
      const result = await deps.validator.validate(request.token, request.requiredScopes);
      if (!result.valid) return { result: rejectionMessage(result.reason, result.message) };
      return {
        result: {
          case: "claims",
          value: claimsMessage(result.claims, context.caller.toString()),
        },
      };
    },
    async introspectToken(request, context) {
      const result = await introspector.introspect(
        request.token,
        request.tokenTypeHint,
        context.signal,
      );
      if (!result.active) return { active: false };
      const caller = context.caller.toString();
      return {
        active: true,
        tokenType: result.tokenType,
        claims:
          result.tokenType === "access_token"
            ? claimsMessage(result.claims, caller)
            : refreshClaimsMessage(result.refreshToken, deps.issuer, caller),
      };
    },
    async authorizeToken(request, context) {
      if (deps.authorizer === undefined) {
        throw new ServiceError("UNAVAILABLE", "no policy decision point is configured");
      }
      const result = await deps.authorizer.authorize(
        {
          token: request.token,
          requiredScopes: request.requiredScopes,
          action: request.action,
          resource: {
            type: request.resource?.type ?? "",
            id: request.resource?.id ?? "",
            attributes: request.resource?.attributes ?? {},
          },
          ipAddress: request.ipAddress,
          contextAttributes: request.contextAttributes ?? {},
          caller: context.caller.toString(),
        },
        context.signal,
      );
      if (!result.valid) return { result: rejectionMessage(result.reason, result.message) };
      const { decision } = result;
      return {
        result: {
          case: "decision",
          value: {
            allowed: decision.allowed,
            policyIds: [...decision.policyIds],
            reason: decision.reason,
            decisionId: decision.decisionId,
            claims: claimsMessage(result.claims, context.caller.toString()),
          },
        },
      };
    },
  });
}
