import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { defineService, unimplementedHandlers, type ServiceRegistration } from "@authplat/rpc";
import {
  AuthEdgeService,
  RejectionReason as ProtoRejectionReason,
  type TokenClaimsSchema,
} from "@authplat/contracts/auth/auth_edge/v1";
import { TokenIntrospector } from "./tokens/token-introspector.ts";
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
  };
}

/** The AuthEdgeService registration: protobuf in, one validator call, protobuf out. */
export function authEdgeRegistration(deps: {
  readonly validator: TokenValidator;
  /**
   * @deprecated Who may call ValidateToken and IntrospectToken is
   *   `apps/auth-edge/src/access-rules.json` (and `ALLOWED_CALLERS`), passed to the server as
   *   `accessRules`; this is read only by servers started without them (older tests).
   */
  readonly allowedCallers?: readonly string[];
  /** IntrospectToken's logic; default one over `validator`. */
  readonly introspector?: TokenIntrospector;
}): ServiceRegistration {
  const introspector = deps.introspector ?? new TokenIntrospector({ validator: deps.validator });
  return defineService(
    AuthEdgeService,
    {
      ...unimplementedHandlers(AuthEdgeService),
      async validateToken(request, context) {
        const result = await deps.validator.validate(request.token, request.requiredScopes);
        if (!result.valid) {
          return {
            result: {
              case: "rejection",
              value: { reason: REASON[result.reason], message: result.message },
            },
          };
        }
        return {
          result: {
            case: "claims",
            value: claimsMessage(result.claims, context.caller.toString()),
          },
        };
      },
      async introspectToken(request, context) {
        const result = await introspector.introspect(request.token, request.tokenTypeHint);
        return result.active
          ? { active: true, claims: claimsMessage(result.claims, context.caller.toString()) }
          : { active: false };
      },
    },
    deps.allowedCallers && {
      validateToken: deps.allowedCallers,
      introspectToken: deps.allowedCallers,
    },
  );
}
