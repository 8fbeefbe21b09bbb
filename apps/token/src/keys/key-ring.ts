import type { PublicJwk, Signer } from "./signer.ts";

/**
 * Where a key is in its life (DESIGN §4, staged rotation): `next` keys are published before
 * they sign, the `active` key signs, `retired` keys stay published until every token they
 * signed has expired.
 */
export type KeyStatus = "next" | "active" | "retired";

/** A published key and its status. */
export interface PublishedKey {
  readonly jwk: PublicJwk;
  readonly status: KeyStatus;
}

/**
 * The signing keys of the token service: exactly one active signer plus published-only keys.
 * Reads are of an immutable snapshot, so a rotation never shows a half-updated set.
 */
export class KeyRing {
  #active: Signer;
  #published: readonly PublishedKey[];

  constructor(active: Signer, others: readonly PublishedKey[] = []) {
    if (others.some((key) => key.status === "active" || key.jwk.kid === active.keyId)) {
      throw new Error("a key ring has exactly one active key and unique key IDs");
    }
    this.#active = active;
    this.#published = Object.freeze([{ jwk: active.publicJwk, status: "active" }, ...others]);
  }

  /** The signer new tokens are signed with. */
  get active(): Signer {
    return this.#active;
  }

  /** Every key verifiers must accept, the active one first. */
  get published(): readonly PublishedKey[] {
    return this.#published;
  }
}
