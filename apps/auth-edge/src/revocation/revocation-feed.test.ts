import { afterEach, describe, expect, it, vi } from "vitest";
import { ServiceError } from "@authplat/errors";
import { RevocationFeed, type RevocationFeedMessage } from "./revocation-feed.ts";
import { RevocationSet, type RevocableClaims } from "./revocation-set.ts";

type Item = { message: RevocationFeedMessage } | { error: unknown } | { end: true };

/** One stream the feed opened: the test pushes messages, breaks it or ends it. */
class FakeStream {
  readonly cursor: string;
  readonly #items: Item[] = [];
  #wake: (() => void) | undefined;

  constructor(cursor: string) {
    this.cursor = cursor;
  }

  push(item: Item): void {
    this.#items.push(item);
    this.#wake?.();
  }

  async *iterate(signal: AbortSignal): AsyncGenerator<RevocationFeedMessage> {
    const onAbort = () => this.#wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      for (;;) {
        const item = this.#items.shift();
        if (item === undefined) {
          if (signal.aborted) return;
          await new Promise<void>((resolve) => (this.#wake = resolve));
          continue;
        }
        if ("error" in item) throw item.error;
        if ("end" in item) return;
        yield item.message;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}

let stop = new AbortController();
afterEach(() => {
  stop.abort();
  stop = new AbortController();
});

function setUp(options: { maxEntries?: number; maxStalenessMs?: number } = {}) {
  let now = 0;
  const wallMs = () => 1_000_000;
  const set = new RevocationSet({ maxEntries: options.maxEntries ?? 100, nowMs: wallMs });
  const streams: FakeStream[] = [];
  const disconnects: { error: unknown; reconnectInMs: number; attempt: number }[] = [];
  const reconnects: number[] = [];
  const feed = new RevocationFeed({
    set,
    open: (cursor, signal) => {
      const stream = new FakeStream(cursor);
      streams.push(stream);
      return stream.iterate(signal);
    },
    maxStalenessMs: options.maxStalenessMs ?? 1_000,
    initialBackoffMs: 1,
    maxBackoffMs: 2,
    nowMs: () => now,
    onDisconnect: (error, reconnectInMs, attempt) =>
      disconnects.push({ error, reconnectInMs, attempt }),
    onReconnect: (downForMs) => reconnects.push(downForMs),
  });
  void feed.run(stop.signal);
  return {
    set,
    feed,
    streams,
    disconnects,
    reconnects,
    advance: (ms: number) => (now += ms),
    stream: (index: number) => vi.waitFor(() => streams[index] ?? expect.fail("not opened yet")),
  };
}

const jti = (value: string) => ({ kind: "jti" as const, value, expiresAtMs: 9e15 });
const token = (tokenId: string): RevocableClaims => ({
  tokenId,
  sessionId: undefined,
  subject: "user-1",
  issuedAt: 0,
});

function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("RevocationFeed", () => {
  it("fails closed before the first snapshot, then answers from the snapshot and additions", async () => {
    const t = setUp();
    expect(thrownBy(() => t.feed.isRevoked(token("j-1")))).toMatchObject({
      code: "UNAVAILABLE",
      message: "the revocation list has not been loaded yet",
      retryAfterMs: 1_000,
    });
    const first = await t.stream(0);
    expect(first.cursor).toBe("");
    first.push({ message: { snapshot: true, entries: [jti("j-1")], cursor: "c1" } });
    await t.feed.loaded;
    expect(t.feed.isRevoked(token("j-1"))).toBe(true);
    expect(t.feed.isRevoked(token("j-2"))).toBe(false);
    first.push({ message: { snapshot: false, entries: [jti("j-2")], cursor: "c2" } });
    await vi.waitFor(() => expect(t.feed.isRevoked(token("j-2"))).toBe(true));
    expect(t.set.cursor).toBe("c2");
  });

  it("reconnects after a broken stream and resumes from the last cursor", async () => {
    const t = setUp();
    const first = await t.stream(0);
    first.push({ message: { snapshot: true, entries: [jti("j-1")], cursor: "c1" } });
    first.push({ message: { snapshot: false, entries: [jti("j-2")], cursor: "c2" } });
    const broken = new ServiceError("UNAVAILABLE", "connection reset");
    first.push({ error: broken });
    const second = await t.stream(1);
    expect(second.cursor).toBe("c2");
    expect(t.disconnects[0]?.error).toBe(broken);
    second.push({ message: { snapshot: false, entries: [jti("j-3")], cursor: "c3" } });
    await vi.waitFor(() => expect(t.feed.isRevoked(token("j-3"))).toBe(true));
    // What came before the break is still enforced: the resume did not start from scratch.
    expect(t.feed.isRevoked(token("j-1"))).toBe(true);
    expect(t.feed.isRevoked(token("j-2"))).toBe(true);
  });

  it("numbers the failures of one outage (to log the loss once) and reports the outage's length when a message comes back", async () => {
    const t = setUp();
    const first = await t.stream(0);
    first.push({ message: { snapshot: true, entries: [], cursor: "c1" } });
    first.push({ error: new ServiceError("UNAVAILABLE", "connection reset") });
    const second = await t.stream(1);
    t.advance(400);
    second.push({ error: new ServiceError("UNAVAILABLE", "connection refused") });
    const third = await t.stream(2);
    expect(t.disconnects.map((d) => d.attempt)).toEqual([1, 2]);
    expect(t.reconnects).toEqual([]);
    t.advance(600);
    third.push({ message: { snapshot: false, entries: [], cursor: "c1" } });
    await vi.waitFor(() => expect(t.reconnects).toEqual([1_000]));
    // A later loss is a new outage: attempt 1 again.
    third.push({ error: new ServiceError("UNAVAILABLE", "connection reset") });
    await t.stream(3);
    expect(t.disconnects.map((d) => d.attempt)).toEqual([1, 2, 1]);
  });

  it("reconnects after a stream that ended normally, also from the last cursor", async () => {
    const t = setUp();
    const first = await t.stream(0);
    first.push({ message: { snapshot: true, entries: [], cursor: "c1" } });
    first.push({ end: true });
    expect((await t.stream(1)).cursor).toBe("c1");
    expect(t.disconnects[0]?.error).toMatchObject({ message: "the revocation feed ended" });
  });

  it("fails closed once no message has arrived for longer than the staleness bound, and recovers with a heartbeat", async () => {
    const t = setUp({ maxStalenessMs: 1_000 });
    const first = await t.stream(0);
    first.push({ message: { snapshot: true, entries: [jti("j-1")], cursor: "c1" } });
    await t.feed.loaded;
    t.advance(1_000);
    expect(t.feed.isRevoked(token("j-2"))).toBe(false);
    t.advance(1);
    const stale = thrownBy(() => t.feed.isRevoked(token("j-2")));
    expect(stale).toBeInstanceOf(ServiceError);
    expect(stale).toMatchObject({
      code: "UNAVAILABLE",
      message: "the revocation list is out of date",
      retryAfterMs: 1_000,
    });
    expect(thrownBy(() => t.feed.check())).toMatchObject({ code: "UNAVAILABLE" });
    first.push({ message: { snapshot: false, entries: [], cursor: "c1" } });
    await vi.waitFor(() => expect(t.feed.stalenessMs).toBe(0));
    expect(t.feed.isRevoked(token("j-1"))).toBe(true);
  });

  it("waits at least the retry pushback of a refusal (an open circuit) before reconnecting", async () => {
    const t = setUp();
    const first = await t.stream(0);
    first.push({
      error: new ServiceError("CIRCUIT_OPEN", "the circuit to token is open", {
        retryAfterMs: 50,
      }),
    });
    await t.stream(1);
    expect(t.disconnects[0]?.reconnectInMs).toBeGreaterThanOrEqual(50);
  });

  it("asks for a fresh snapshot when the list overflowed its bound, and fails closed until one fits", async () => {
    const t = setUp({ maxEntries: 1 });
    const first = await t.stream(0);
    first.push({ message: { snapshot: true, entries: [jti("j-1"), jti("j-2")], cursor: "c1" } });
    const second = await t.stream(1);
    expect(second.cursor).toBe("");
    expect(thrownBy(() => t.feed.isRevoked(token("j-3")))).toMatchObject({ code: "UNAVAILABLE" });
    second.push({ message: { snapshot: true, entries: [jti("j-2")], cursor: "c2" } });
    await vi.waitFor(() => expect(t.set.overflowed).toBe(false));
    expect(t.feed.isRevoked(token("j-2"))).toBe(true);
    expect(t.feed.isRevoked(token("j-1"))).toBe(false);
  });
});
