import { describe, expect, it } from "vitest";
import { CedarEngine } from "./cedar-engine.ts";
import { BundleError, type PolicyBundleSource } from "./policy-engine.ts";
import { PolicyStore, type ReloadOutcome } from "./policy-store.ts";
import { defaultBundle, withFiles } from "./test-bundles.ts";

describe("PolicyStore", () => {
  it("refuses to open on an invalid bundle, naming file and line", async () => {
    const bundle = withFiles(await defaultBundle(), {
      "bad.cedar": "\npermit (principal, action, resource) when { };\n",
    });
    await expect(
      PolicyStore.open({ engine: new CedarEngine(), read: async () => bundle }),
    ).rejects.toThrow(/^invalid policy bundle: bad\.cedar:2: /);
  });

  it("keeps the old set after a refused reload and reports the failure", async () => {
    const good = await defaultBundle();
    let source: PolicyBundleSource = good;
    const outcomes: ReloadOutcome[] = [];
    const store = await PolicyStore.open({
      engine: new CedarEngine(),
      read: async () => source,
      onReload: (outcome) => outcomes.push(outcome),
    });
    const version = store.current.version;
    source = withFiles(good, { "roles.json": '{"roles": {"a": {"inherits": ["a"]}}}' });
    const refused = await store.reload();
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error).toBeInstanceOf(BundleError);
    expect(store.current.version).toBe(version);
    source = good;
    expect(await store.reload()).toEqual({
      ok: true,
      changed: false,
      version,
      previousVersion: version,
    });
    expect(outcomes.map((o) => o.ok)).toEqual([false, true]);
    store.current.dispose();
  });

  it("runs concurrent reloads one after the other, in the order asked", async () => {
    const good = await defaultBundle();
    const reads = [
      good,
      withFiles(good, { "x.cedar": "// one\n" }),
      withFiles(good, { "x.cedar": "// two\n" }),
    ];
    const store = await PolicyStore.open({
      engine: new CedarEngine(),
      read: async () => reads.shift()!,
    });
    const [a, b] = await Promise.all([store.reload(), store.reload()]);
    expect(a).toMatchObject({ ok: true, changed: true });
    expect(b).toMatchObject({ ok: true, changed: true, previousVersion: a.version });
    expect(store.current.version).toBe(b.version);
    store.current.dispose();
  });
});
