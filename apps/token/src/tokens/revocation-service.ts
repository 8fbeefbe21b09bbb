import { createPublicKey, verify, type KeyObject } from "node:crypto";
import type { PublicJwk } from "../keys/signer.ts";
import type { SecurityLog } from "./token-issuer.ts";
import { hashOpaqueToken } from "./token-issuer.ts";
import type {
  FamilySelector,
  FeedCursor,
  RevocationEntry,
  TokenStore,
} from "./refresh-token-store.ts";

/** What to revoke (RFC 7009 plus the platform's internal targets). */
export type RevocationTarget =
  | {
      /** A token as issued: an access token (JWS) or an opaque refresh token. */
      readonly token: string;
      /** RFC 7009 §2.1: when set, a token of another client is left alone. */
      readonly clientId?: string;
    }
  | { readonly tokenId: string }
  | { readonly familyId: string }
  | { readonly sessionId: string }
  | { readonly subject: string };

/** The outcome of a revocation. */
export interface RevocationResult {
  readonly revokedAtMs: number;
  /** Whether the target matched something still live; for internal callers and audit only. */
  readonly found: boolean;
}

/** One message of the revocation feed. */
export interface FeedMessage {
  /** True for the snapshot a reader starts with (and restarts with when its cursor is gone). */
  readonly snapshot: boolean;
  readonly entries: readonly RevocationEntry[];
  /** Where to resume after a reconnect. */
  readonly cursor: FeedCursor;
}

/** Dependencies of {@link RevocationService}. */
export interface RevocationServiceDeps {
  readonly store: TokenStore;
  readonly nowMs: () => number;
  /** The keys access tokens may be signed with (the published JWKS). */
  readonly verificationKeys: () => readonly PublicJwk[];
  /**
   * Upper bound of any access token's lifetime, in seconds: a `jti` revoked without its token
   * stays on the list this long, which covers the token whatever its `exp`.
   */
  readonly maxAccessTokenTtlSeconds: number;
  readonly log?: SecurityLog;
}

const FEED_BATCH = 500;

/**
 * Revocation (RFC 7009; requirements 2.4, 3.4, 9.3) and the feed edges follow. Revoking
 * something unknown or already revoked succeeds and reveals nothing (RFC 7009 §2.2).
 */
export class RevocationService {
  readonly #deps: RevocationServiceDeps;
  readonly #keyCache = new Map<string, KeyObject>();

  constructor(deps: RevocationServiceDeps) {
    this.#deps = deps;
  }

  /** Revokes `target`; `reason` and `caller` go to the audit log. */
  async revoke(
    target: RevocationTarget,
    audit: { readonly reason: string; readonly caller: string },
  ): Promise<RevocationResult> {
    const nowMs = this.#deps.nowMs();
    const found = await this.#revoke(target, nowMs);
    this.#deps.log?.info(
      { event: "revocation", target: Object.keys(target)[0], found, ...audit },
      "revocation requested",
    );
    return { revokedAtMs: nowMs, found };
  }

  /** Whether an access token `jti` is revoked now. */
  async isRevoked(jti: string): Promise<boolean> {
    return this.#deps.store.isRevoked(jti, this.#deps.nowMs());
  }

  /**
   * The revocation feed: a snapshot of the live list, then every new entry, until `signal`
   * aborts. With the `cursor` of an earlier message it resumes after that message; a cursor the
   * store no longer knows restarts with a snapshot.
   */
  async *watch(cursor: FeedCursor | undefined, signal: AbortSignal): AsyncGenerator<FeedMessage> {
    const { store, nowMs } = this.#deps;
    let pending = true;
    let wake: (() => void) | undefined;
    const stop = store.onEvents(() => {
      pending = true;
      wake?.();
    });
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      let position = cursor;
      while (!signal.aborted) {
        if (position === undefined) {
          const snapshot = await store.snapshot(nowMs());
          position = snapshot.cursor;
          yield { snapshot: true, entries: snapshot.entries, cursor: snapshot.cursor };
          continue;
        }
        if (!pending) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            if (pending || signal.aborted) resolve();
          });
          wake = undefined;
          continue;
        }
        pending = false;
        for (;;) {
          const events = await store.eventsAfter(position, FEED_BATCH);
          if (events === "gone") {
            position = undefined;
            break;
          }
          if (events.length === 0) break;
          position = events.at(-1)!.cursor;
          const now = nowMs();
          const entries = events.map((e) => e.entry).filter((e) => e.expiresAtMs > now);
          if (entries.length > 0) yield { snapshot: false, entries, cursor: position };
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      stop();
    }
  }

  async #revoke(target: RevocationTarget, nowMs: number): Promise<boolean> {
    const { store } = this.#deps;
    const families = async (selector: FamilySelector) =>
      (await store.revokeFamilies(selector, nowMs)).families > 0;
    if ("tokenId" in target) {
      const expiresAtMs = nowMs + this.#deps.maxAccessTokenTtlSeconds * 1000;
      await store.revoke([{ id: target.tokenId, expiresAtMs }], nowMs);
      return true;
    }
    if ("familyId" in target) return families({ familyId: target.familyId });
    if ("sessionId" in target) return families({ sessionId: target.sessionId });
    if ("subject" in target) return families({ subject: target.subject });
    const access = this.#verifiedAccessToken(target.token);
    if (access !== undefined) {
      if (target.clientId !== undefined && access.client_id !== target.clientId) return false;
      if (access.exp * 1000 <= nowMs) return false;
      await store.revoke([{ id: access.jti, expiresAtMs: access.exp * 1000 }], nowMs);
      return true;
    }
    const family = await store.familyOfToken(hashOpaqueToken(target.token), nowMs);
    if (family === undefined) return false;
    if (target.clientId !== undefined && family.clientId !== target.clientId) return false;
    await families({ familyId: family.familyId });
    return true;
  }

  /**
   * The claims of an access token this service signed, or undefined. The signature is checked
   * so that nobody revokes a `jti` by forging a token around it.
   */
  #verifiedAccessToken(token: string): { jti: string; exp: number; client_id: string } | undefined {
    const parts = token.split(".");
    if (parts.length !== 3 || token.length > 16_384) return undefined;
    try {
      const header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8"));
      // RFC 8725 §3.1: the algorithm comes from the key, never from the token.
      const jwk = this.#deps.verificationKeys().find((key) => key.kid === header.kid);
      if (jwk === undefined || header.alg !== jwk.alg || header.typ !== "at+jwt") return undefined;
      const key = this.#publicKey(jwk);
      const input = Buffer.from(`${parts[0]}.${parts[1]}`, "ascii");
      const signature = Buffer.from(parts[2]!, "base64url");
      const valid =
        jwk.alg === "ES256"
          ? verify("sha256", input, { key, dsaEncoding: "ieee-p1363" }, signature)
          : verify(null, input, key, signature);
      if (!valid) return undefined;
      const claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"));
      if (
        typeof claims.jti !== "string" ||
        typeof claims.exp !== "number" ||
        typeof claims.client_id !== "string"
      ) {
        return undefined;
      }
      return claims;
    } catch {
      return undefined;
    }
  }

  #publicKey(jwk: PublicJwk): KeyObject {
    let key = this.#keyCache.get(jwk.kid);
    if (key === undefined) {
      key = createPublicKey({ key: { ...jwk }, format: "jwk" });
      this.#keyCache.set(jwk.kid, key);
    }
    return key;
  }
}
