import { describe, expect, it } from "vitest";
import type { RefreshTokenRecord, RefreshTokenStore } from "./refresh-token-store.ts";

/** A store under test with a clock the suite controls. */
export interface StoreUnderTest {
  readonly store: RefreshTokenStore;
  /** Moves the store's clock to `ms` since the epoch. */
  setNow(ms: number): void;
  /** Releases what the store holds. */
  cleanup?(): Promise<void>;
}

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

function record(overrides: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord {
  return {
    tokenHash: `h-${Math.random().toString(36).slice(2)}`,
    familyId: "family-1",
    subject: "user-1",
    clientId: "client-1",
    audience: ["https://api.auth.local"],
    scopes: ["a", "b"],
    sessionId: "s-1",
    issuedAtMs: NOW,
    expiresAtMs: NOW + 60_000,
    ...overrides,
  };
}

/**
 * The behaviour every {@link RefreshTokenStore} backend must have. Call it from the backend's
 * test file with a factory that makes a fresh, empty store whose clock starts at any time.
 */
export function describeRefreshTokenStoreContract(
  name: string,
  makeStore: () => Promise<StoreUnderTest>,
): void {
  describe(`RefreshTokenStore contract: ${name}`, () => {
    async function withStore(body: (subject: StoreUnderTest) => Promise<void>): Promise<void> {
      const subject = await makeStore();
      subject.setNow(NOW);
      try {
        await body(subject);
      } finally {
        await subject.cleanup?.();
      }
    }

    it("returns exactly what was inserted, found by hash", () =>
      withStore(async ({ store }) => {
        const saved = record({ sessionId: undefined });
        await store.insert(saved);
        expect(await store.findByHash(saved.tokenHash)).toEqual(saved);
        expect(await store.findByHash("unknown")).toBeUndefined();
      }));

    it("refuses a second record with the same hash and keeps the first", () =>
      withStore(async ({ store }) => {
        const first = record();
        await store.insert(first);
        await expect(store.insert({ ...first, subject: "someone-else" })).rejects.toThrow();
        expect(await store.findByHash(first.tokenHash)).toEqual(first);
      }));

    it("reads an expired record as absent", () =>
      withStore(async ({ store, setNow }) => {
        const saved = record({ expiresAtMs: NOW + 1_000 });
        await store.insert(saved);
        setNow(NOW + 999);
        expect(await store.findByHash(saved.tokenHash)).toEqual(saved);
        setNow(NOW + 1_000);
        expect(await store.findByHash(saved.tokenHash)).toBeUndefined();
      }));
  });
}
