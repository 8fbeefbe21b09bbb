import { create } from "@bufbuild/protobuf";
import {
  DurationSchema,
  durationMs,
  timestampFromMs,
  timestampMs,
  type Duration,
} from "@bufbuild/protobuf/wkt";
import { defineService, type ServiceRegistration } from "@authplat/rpc";
import { ServiceError } from "@authplat/errors";
import { AuthenticationMethod } from "@authplat/contracts/auth/common/v1/authentication";
import {
  KeyStatus,
  RevocationReason,
  TokenService,
  type RevokeTokenRequest,
} from "@authplat/contracts/auth/token/v1";
import type { KeyManager } from "./keys/key-manager.ts";
import type { KeyRing, KeyStatus as DomainKeyStatus } from "./keys/key-ring.ts";
import type { IdTokenIssuer } from "./tokens/id-token.ts";
import type { ActiveRefreshToken } from "./tokens/refresh-token-store.ts";
import type {
  FeedMessage,
  RevocationService,
  RevocationTarget,
} from "./tokens/revocation-service.ts";
import type { TokenIssuer, TokenPair } from "./tokens/token-issuer.ts";

const KEY_STATUS: Record<DomainKeyStatus, KeyStatus> = {
  next: KeyStatus.NEXT,
  active: KeyStatus.ACTIVE,
  retired: KeyStatus.RETIRED,
};

// RFC 8176 §2 values for the platform's authentication methods.
const AMR: Record<AuthenticationMethod, string | undefined> = {
  [AuthenticationMethod.UNSPECIFIED]: undefined,
  [AuthenticationMethod.PASSWORD]: "pwd",
  [AuthenticationMethod.TOTP]: "otp",
  [AuthenticationMethod.WEBAUTHN]: "hwk",
  [AuthenticationMethod.PUSH]: "mca",
  [AuthenticationMethod.BACKUP_CODE]: "otp",
};

/** RFC 8176 values of `methods`; an unspecified or unknown method is INVALID_ARGUMENT. */
function amrValues(methods: readonly AuthenticationMethod[]): string[] {
  const amr = methods.map((method) => AMR[method]);
  if (amr.some((value) => value === undefined)) {
    throw new ServiceError("INVALID_ARGUMENT", "authentication_methods must be known methods");
  }
  return amr as string[];
}

/** How long verifiers may cache the JWKS before asking again. */
const JWKS_MAX_AGE_SECONDS = 300n;
const TARGET = /^[\x21-\x7E]{1,16384}$/;

function revocationTarget(request: RevokeTokenRequest): RevocationTarget {
  const { target } = request;
  if (target.case === undefined || !TARGET.test(target.value)) {
    throw new ServiceError("INVALID_ARGUMENT", "exactly one revocation target is required");
  }
  switch (target.case) {
    case "token":
      return request.clientId === ""
        ? { token: target.value }
        : { token: target.value, clientId: request.clientId };
    case "tokenId":
      return { tokenId: target.value };
    case "familyId":
      return { familyId: target.value };
    case "sessionId":
      return { sessionId: target.value };
    case "subject":
      return { subject: target.value };
  }
}

const MIN_HEARTBEAT_MS = 100;
const MAX_HEARTBEAT_MS = 60_000;

/** The requested heartbeat interval in ms, undefined for none; out of range is INVALID_ARGUMENT. */
function heartbeatIntervalMs(interval: Duration | undefined): number | undefined {
  if (interval === undefined) return undefined;
  const ms = durationMs(interval);
  if (ms === 0) return undefined;
  if (!(ms >= MIN_HEARTBEAT_MS && ms <= MAX_HEARTBEAT_MS)) {
    throw new ServiceError(
      "INVALID_ARGUMENT",
      `heartbeat_interval must be between ${MIN_HEARTBEAT_MS} ms and ${MAX_HEARTBEAT_MS / 1000} s`,
    );
  }
  return ms;
}

/**
 * The feed with heartbeats: one at once (a subscriber that resumes from a cursor otherwise
 * hears nothing until the next revocation, and could not tell a live stream from a dead one),
 * then one whenever `intervalMs` passes without a message. A heartbeat carries no entries and
 * the cursor of the last message sent (or the one the subscriber resumed from).
 */
async function* withHeartbeats(
  feed: AsyncGenerator<FeedMessage>,
  intervalMs: number,
  cursor: string,
  signal: AbortSignal,
): AsyncGenerator<FeedMessage> {
  let position = cursor;
  let pending: Promise<IteratorResult<FeedMessage>> | undefined;
  try {
    if (position !== "") yield { snapshot: false, entries: [], cursor: position };
    while (!signal.aborted) {
      pending ??= feed.next();
      let timer: NodeJS.Timeout | undefined;
      const beat = new Promise<"beat">((resolve) => {
        timer = setTimeout(() => resolve("beat"), intervalMs);
      });
      const next = await Promise.race([pending, beat]);
      clearTimeout(timer);
      if (next === "beat") {
        // Before the first snapshot there is no position to report; the snapshot comes soon.
        if (position !== "") yield { snapshot: false, entries: [], cursor: position };
        continue;
      }
      pending = undefined;
      if (next.done === true) return;
      position = next.value.cursor;
      yield next.value;
    }
  } finally {
    // The feed ends by itself once `signal` aborts; a pending next() settles then.
    void feed.return(undefined).catch(() => undefined);
  }
}

/** The fields IssueTokenPair and RefreshTokens answer alike. */
function pairMessage(pair: TokenPair) {
  return {
    accessToken: pair.accessToken,
    tokenType: "Bearer",
    accessTokenExpiresAt: timestampFromMs(pair.accessTokenExpiresAtMs),
    refreshToken: pair.refreshToken,
    refreshTokenExpiresAt: timestampFromMs(pair.refreshTokenExpiresAtMs),
    tokenId: pair.tokenId,
    familyId: pair.familyId,
    scopes: [...pair.scopes],
  };
}

/**
 * The InspectRefreshToken answer: `{active: false}` alone for an inactive token, so callers cannot
 * tell unknown from used, expired or revoked; otherwise the family and the token's own times.
 */
function inspectionMessage(found: ActiveRefreshToken | undefined) {
  if (found === undefined) return { active: false };
  const { family, token } = found;
  return {
    active: true,
    subject: family.subject,
    clientId: family.clientId,
    scopes: [...family.scopes],
    sessionId: family.sessionId ?? "",
    familyId: family.familyId,
    issuedAt: timestampFromMs(token.issuedAtMs),
    // The store keeps it as the earlier of the idle deadline and the family's end.
    expiresAt: timestampFromMs(token.expiresAtMs),
    roles: [...(family.roles ?? [])],
    tenant: family.tenant ?? "",
  };
}

/**
 * The TokenService registration: protobuf in, domain call, protobuf out. Who may call each RPC
 * is `apps/token/src/access-rules.json`, passed to the server as `accessRules`.
 */
export function tokenServiceRegistration(deps: {
  readonly issuer: TokenIssuer;
  readonly keys: KeyRing;
  readonly revocations: RevocationService;
  readonly idTokens: IdTokenIssuer;
  /** Absent when the signing key is fixed; RotateSigningKeys then fails FAILED_PRECONDITION. */
  readonly keyManager?: KeyManager;
}): ServiceRegistration {
  return defineService(TokenService, {
    async issueTokenPair(request) {
      const pair = await deps.issuer.issuePair({
        subject: request.subject,
        clientId: request.clientId,
        audience: request.audience,
        scopes: request.scopes,
        sessionId: request.sessionId,
        roles: request.roles,
        tenant: request.tenant,
        acr: request.acr,
        amr: amrValues(request.authenticationMethods),
        authTimeMs: request.authTime === undefined ? undefined : timestampMs(request.authTime),
      });
      return pairMessage(pair);
    },
    async refreshTokens(request, context) {
      const pair = await deps.issuer.refresh({
        refreshToken: request.refreshToken,
        clientId: request.clientId,
        scopes: request.scopes,
        caller: context.caller.toString(),
      });
      return {
        ...pairMessage(pair),
        subject: pair.subject,
        sessionId: pair.sessionId ?? "",
      };
    },
    async revokeToken(request, context) {
      const result = await deps.revocations.revoke(revocationTarget(request), {
        reason: RevocationReason[request.reason] ?? "UNSPECIFIED",
        caller: context.caller.toString(),
      });
      return { revokedAt: timestampFromMs(result.revokedAtMs), found: result.found };
    },
    async getJwks() {
      return {
        keys: deps.keys.published.map(({ jwk, status }) => ({
          kty: jwk.kty,
          kid: jwk.kid,
          use: jwk.use,
          alg: jwk.alg,
          crv: jwk.crv,
          x: jwk.x,
          y: jwk.y ?? "",
          status: KEY_STATUS[status],
        })),
        maxAge: create(DurationSchema, { seconds: JWKS_MAX_AGE_SECONDS }),
      };
    },
    async issueIdToken(request) {
      const amr = amrValues(request.authenticationMethods);
      const token = await deps.idTokens.issue({
        subject: request.subject,
        clientId: request.clientId,
        nonce: request.nonce,
        authTimeMs: request.authTime === undefined ? Number.NaN : timestampMs(request.authTime),
        amr,
        acr: request.acr,
        sessionId: request.sessionId,
        accessToken: request.accessToken,
        code: request.code,
      });
      return { idToken: token.idToken, expiresAt: timestampFromMs(token.expiresAtMs) };
    },
    async *watchRevocations(request, context) {
      const cursor = request.cursor === "" ? undefined : request.cursor;
      const heartbeatMs = heartbeatIntervalMs(request.heartbeatInterval);
      const feed = deps.revocations.watch(cursor, context.signal);
      const messages =
        heartbeatMs === undefined
          ? feed
          : withHeartbeats(feed, heartbeatMs, cursor ?? "", context.signal);
      for await (const message of messages) {
        yield {
          snapshot: message.snapshot,
          cursor: message.cursor,
          revoked: message.entries.map((entry) => ({
            tokenId: entry.id,
            expiresAt: timestampFromMs(entry.expiresAtMs),
          })),
        };
      }
    },
    async rotateSigningKeys() {
      if (deps.keyManager === undefined) {
        throw new ServiceError(
          "FAILED_PRECONDITION",
          "the signing key is fixed by SIGNING_KEY_FILE and does not rotate",
        );
      }
      const staged = await deps.keyManager.rotate();
      return {
        kid: staged.kid,
        publishedAt: timestampFromMs(staged.publishedAtMs),
        activatesAt: timestampFromMs(staged.activatesAtMs),
      };
    },
    async inspectRefreshToken(request) {
      return inspectionMessage(await deps.issuer.inspectRefreshToken(request.refreshToken));
    },
  });
}
