import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkBreaking, checkLint, compareTrees, findBaseline } from "./proto-check.ts";
import { REPO_ROOT } from "./proto-generate.ts";

const PROTO = (fields: string) => `syntax = "proto3";

package demo.v1;

// DemoService is a service for the test.
service DemoService {
  // Get gets.
  rpc Get(GetRequest) returns (GetResponse);
}

// GetRequest is the request.
message GetRequest {
${fields}
}

// GetResponse is the response.
message GetResponse {}
`;

let repo: string;

function git(...args: string[]): string {
  return execFileSync("git", args, { cwd: repo, encoding: "utf8" }).trim();
}

function commitProto(fields: string, message: string): string {
  writeFileSync(join(repo, "proto/demo/v1/demo.proto"), PROTO(fields));
  git("add", "-A");
  git("commit", "-q", "-m", message);
  return git("rev-parse", "HEAD");
}

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), "authplat-proto-check-test-"));
  mkdirSync(join(repo, "proto/demo/v1"), { recursive: true });
  symlinkSync(join(REPO_ROOT, "node_modules"), join(repo, "node_modules"));
  writeFileSync(join(repo, ".gitignore"), "node_modules\n.cache\n");
  writeFileSync(
    join(repo, "buf.yaml"),
    "version: v2\nmodules:\n  - path: proto\nlint:\n  use:\n    - STANDARD\nbreaking:\n  use:\n    - FILE\n",
  );
  git("init", "-q");
  git("config", "user.email", "test@example.invalid");
  git("config", "user.name", "test");
  git("commit", "-q", "--allow-empty", "-m", "empty start");
});

afterEach(() => {
  rmSync(repo, { recursive: true, force: true });
});

describe("proto:check", () => {
  it("skips the breaking check when no earlier commit has proto/", () => {
    commitProto("  // Id is the id.\n  string id = 1;", "first contracts");
    expect(findBaseline(repo)).toMatchObject({
      kind: "none",
      reason: expect.stringContaining("has no proto/ directory"),
    });
  });

  it("fails when the last proto change removed a field, naming it", () => {
    const first = commitProto(
      "  // Id is the id.\n  string id = 1;\n  // Name is the name.\n  string name = 2;",
      "first",
    );
    commitProto("  // Id is the id.\n  string id = 1;", "drop name");
    const baseline = findBaseline(repo);
    expect(baseline).toMatchObject({ kind: "commit", commit: first });
    const result = checkBreaking(process.env, baseline, repo);
    expect(result.outcome).toBe("failed");
    expect(result.details.join("\n")).toMatch(/name/);
  });

  it("passes an additive change, and compares against HEAD while proto/ has uncommitted edits", () => {
    const first = commitProto("  // Id is the id.\n  string id = 1;", "first");
    commitProto(
      "  // Id is the id.\n  string id = 1;\n  // Name is the name.\n  string name = 2;",
      "add name",
    );
    expect(checkBreaking(process.env, findBaseline(repo), repo).outcome).toBe("ok");
    writeFileSync(
      join(repo, "proto/demo/v1/demo.proto"),
      PROTO("  // Id is the id.\n  string id = 1;"),
    );
    const editing = findBaseline(repo);
    expect(editing).toMatchObject({
      kind: "commit",
      description: expect.stringContaining("uncommitted"),
    });
    expect(editing).not.toMatchObject({ commit: first });
    expect(checkBreaking(process.env, editing, repo).outcome).toBe("failed");
  });

  it("reports lint problems", () => {
    commitProto("  string ID = 1;", "bad field name");
    const result = checkLint(process.env, repo);
    expect(result.outcome).toBe("failed");
    expect(result.details.join("\n")).toMatch(/lower_snake_case/);
  });
});

describe("compareTrees", () => {
  it("lists stale, missing and extra files", () => {
    const committed = join(repo, "committed");
    const fresh = join(repo, "fresh");
    mkdirSync(join(committed, "a"), { recursive: true });
    mkdirSync(join(fresh, "a"), { recursive: true });
    writeFileSync(join(committed, "a/same.js"), "1");
    writeFileSync(join(fresh, "a/same.js"), "1");
    writeFileSync(join(committed, "a/stale.js"), "old");
    writeFileSync(join(fresh, "a/stale.js"), "new");
    writeFileSync(join(fresh, "a/missing.js"), "x");
    writeFileSync(join(committed, "extra.js"), "x");
    expect(compareTrees(committed, fresh)).toEqual({
      stale: ["a/stale.js"],
      missing: ["a/missing.js"],
      extra: ["extra.js"],
    });
  });
});
