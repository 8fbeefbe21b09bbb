import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { buildServices } from "./build-services.ts";
import { bundlePath } from "./platform-services.ts";

const root = resolve(import.meta.dirname, "..", "..");

describe("buildServices", () => {
  it("bundles a service's own code into one file that imports only packages", async () => {
    await buildServices(root, ["mfa"]);
    const code = await readFile(bundlePath(root, "mfa"), "utf8");
    const imports = [...code.matchAll(/^import .*? from "([^"]+)";$/gm)].map((m) => m[1]!);
    expect(imports.length).toBeGreaterThan(0);
    // Nothing of ours is left to load at run time, so the type stripper never starts.
    expect(imports.filter((id) => id.startsWith("@authplat/") || id.startsWith("."))).toEqual([]);
    expect(code).not.toMatch(/from "[^"]+\.ts"/);
    expect(code).toContain('"mfa"');
  });
});
