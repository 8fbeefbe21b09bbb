import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { runDevPkiCli } from "./dev-pki-cli.ts";

let root: string;
let lines: { out: string[]; err: string[] };
const output = {
  out: (line: string) => lines.out.push(line),
  err: (line: string) => lines.err.push(line),
};

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "dev-pki-cli-test-"));
  lines = { out: [], err: [] };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("dev-pki-cli", () => {
  it("creates the PKI, then reports that it is up to date", async () => {
    const dir = join(root, "pki");
    expect(await runDevPkiCli(["--dir", dir], output)).toBe(0);
    expect(lines.out[0]).toMatch(
      new RegExp(`^dev PKI in .*pki: new CA for auth\\.local and 6 SVIDs \\(\\d+ ms\\)$`),
    );
    expect(await readdir(dir)).toContain("bundle.pem");

    lines = { out: [], err: [] };
    expect(await runDevPkiCli(["--dir", dir], output)).toBe(0);
    expect(lines.out).toEqual([`dev PKI in ${dir}: up to date, nothing written`]);
  });

  it("regenerates with --force and honours --trust-domain", async () => {
    const dir = join(root, "pki");
    await runDevPkiCli(["--dir", dir], output);
    lines = { out: [], err: [] };
    expect(
      await runDevPkiCli(["--dir", dir, "--trust-domain", "dev.example", "--force"], output),
    ).toBe(0);
    expect(lines.out).toEqual([
      expect.stringMatching(/new CA for dev\.example and 6 SVIDs/),
      "  regenerated everything: forced",
    ]);
  });

  it("exits 1 with the usage on an unknown option", async () => {
    expect(await runDevPkiCli(["--bogus"], output)).toBe(1);
    expect(lines.err[0]).toMatch(
      /^Unknown option '--bogus'\nusage: node tools\/src\/dev-pki-cli\.ts/,
    );
  });

  it("exits 1 naming the rule on an invalid trust domain", async () => {
    expect(
      await runDevPkiCli(["--dir", join(root, "pki"), "--trust-domain", "Bad.Domain"], output),
    ).toBe(1);
    expect(lines.err).toEqual([
      "dev PKI failed: SPIFFE-ID §2.1: the trust domain must contain only lowercase [a-z0-9.-_]",
    ]);
  });
});
