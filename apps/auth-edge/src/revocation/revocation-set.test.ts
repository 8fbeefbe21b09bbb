import { describe, expect, it } from "vitest";
import { ServiceError } from "@authplat/errors";
import { RevocationSet, type RevocableClaims } from "./revocation-set.ts";

function clock(startMs = 1_000_000) {
  let now = startMs;
  return { nowMs: () => now, advance: (ms: number) => (now += ms) };
}

const claims = (overrides: Partial<RevocableClaims> = {}): RevocableClaims => ({
  tokenId: "j-1",
  sessionId: "s-1",
  subject: "user-1",
  issuedAt: 1_000,
  ...overrides,
});

describe("RevocationSet", () => {
  it("revokes a token whose jti is on the list and no other", () => {
    const time = clock();
    const set = new RevocationSet({ maxEntries: 10, nowMs: time.nowMs });
    set.replace([{ kind: "jti", value: "j-1", expiresAtMs: time.nowMs() + 60_000 }], "c1");
    expect(set.isRevoked(claims())).toBe(true);
    expect(set.isRevoked(claims({ tokenId: "j-2" }))).toBe(false);
    expect(set.cursor).toBe("c1");
    expect(set.loaded).toBe(true);
  });

  it("forgets an entry once its lifetime has passed, on lookup and on prune", () => {
    const time = clock();
    const set = new RevocationSet({ maxEntries: 10, nowMs: time.nowMs });
    set.replace(
      [
        { kind: "jti", value: "j-1", expiresAtMs: time.nowMs() + 1_000 },
        { kind: "jti", value: "j-2", expiresAtMs: time.nowMs() + 1_000 },
        { kind: "jti", value: "j-3", expiresAtMs: time.nowMs() + 5_000 },
      ],
      "c1",
    );
    time.advance(1_000);
    expect(set.isRevoked(claims({ tokenId: "j-1" }))).toBe(false);
    expect(set.size).toBe(2);
    expect(set.prune()).toBe(1);
    expect(set.size).toBe(1);
    expect(set.isRevoked(claims({ tokenId: "j-3" }))).toBe(true);
  });

  it("ignores entries that arrive already expired", () => {
    const time = clock();
    const set = new RevocationSet({ maxEntries: 10, nowMs: time.nowMs });
    set.add([{ kind: "jti", value: "j-1", expiresAtMs: time.nowMs() }], "c1");
    expect(set.size).toBe(0);
    expect(set.cursor).toBe("c1");
  });

  it("keeps the later expiry when an entry is revoked twice", () => {
    const time = clock();
    const set = new RevocationSet({ maxEntries: 10, nowMs: time.nowMs });
    set.add([{ kind: "jti", value: "j-1", expiresAtMs: time.nowMs() + 5_000 }], "c1");
    set.add([{ kind: "jti", value: "j-1", expiresAtMs: time.nowMs() + 1_000 }], "c2");
    time.advance(2_000);
    expect(set.isRevoked(claims())).toBe(true);
  });

  it("replaces everything it held with a snapshot", () => {
    const time = clock();
    const set = new RevocationSet({ maxEntries: 10, nowMs: time.nowMs });
    set.add([{ kind: "jti", value: "j-1", expiresAtMs: time.nowMs() + 5_000 }], "c1");
    set.replace([{ kind: "jti", value: "j-2", expiresAtMs: time.nowMs() + 5_000 }], "c9");
    expect(set.isRevoked(claims({ tokenId: "j-1" }))).toBe(false);
    expect(set.isRevoked(claims({ tokenId: "j-2" }))).toBe(true);
    expect(set.cursor).toBe("c9");
  });

  it("keeps the cursor when a message moves no position", () => {
    const set = new RevocationSet({ maxEntries: 10, nowMs: clock().nowMs });
    set.replace([], "c1");
    set.add([], "");
    expect(set.cursor).toBe("c1");
  });

  it("revokes every token of a revoked session", () => {
    const time = clock();
    const set = new RevocationSet({ maxEntries: 10, nowMs: time.nowMs });
    set.add([{ kind: "sid", value: "s-1", expiresAtMs: time.nowMs() + 5_000 }], "c1");
    expect(set.isRevoked(claims({ tokenId: "j-7" }))).toBe(true);
    expect(set.isRevoked(claims({ tokenId: "j-7", sessionId: "s-2" }))).toBe(false);
    expect(set.isRevoked(claims({ tokenId: "j-7", sessionId: undefined }))).toBe(false);
  });

  it("revokes a subject's tokens issued before the revocation, not those issued after", () => {
    const time = clock(10_000_000);
    const set = new RevocationSet({ maxEntries: 10, nowMs: time.nowMs });
    set.add(
      [{ kind: "sub", value: "user-1", expiresAtMs: 20_000_000, revokedAtMs: 10_000_000 }],
      "c1",
    );
    expect(set.isRevoked(claims({ issuedAt: 9_999 }))).toBe(true);
    expect(set.isRevoked(claims({ issuedAt: 10_000 }))).toBe(false);
    expect(set.isRevoked(claims({ subject: "user-2", issuedAt: 9_999 }))).toBe(false);
  });

  it("makes room by dropping expired entries when the bound is reached", () => {
    const time = clock();
    const set = new RevocationSet({ maxEntries: 2, nowMs: time.nowMs });
    set.add(
      [
        { kind: "jti", value: "j-1", expiresAtMs: time.nowMs() + 1_000 },
        { kind: "jti", value: "j-2", expiresAtMs: time.nowMs() + 9_000 },
      ],
      "c1",
    );
    time.advance(1_000);
    set.add([{ kind: "jti", value: "j-3", expiresAtMs: time.nowMs() + 9_000 }], "c2");
    expect(set.overflowed).toBe(false);
    expect(set.isRevoked(claims({ tokenId: "j-3" }))).toBe(true);
  });

  it("fails closed with UNAVAILABLE when live entries exceed the bound, until a snapshot fits", () => {
    const time = clock();
    const set = new RevocationSet({ maxEntries: 2, nowMs: time.nowMs });
    const live = (value: string) => ({ kind: "jti" as const, value, expiresAtMs: 9e15 });
    set.replace([live("j-1"), live("j-2"), live("j-3")], "c1");
    expect(set.overflowed).toBe(true);
    let thrown: unknown;
    try {
      set.isRevoked(claims({ tokenId: "j-9" }));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ServiceError);
    expect(thrown).toMatchObject({
      code: "UNAVAILABLE",
      message: "the revocation list is larger than this edge holds; try again later",
      retryAfterMs: 1_000,
    });
    set.replace([live("j-1")], "c2");
    expect(set.overflowed).toBe(false);
    expect(set.isRevoked(claims({ tokenId: "j-9" }))).toBe(false);
  });

  it("refuses a bound below one", () => {
    expect(() => new RevocationSet({ maxEntries: 0, nowMs: Date.now })).toThrow(
      "maxEntries must be an integer ≥ 1",
    );
  });
});
