import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";
import type { DescService } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AuthEdgeService } from "@authplat/contracts/auth/auth_edge/v1";
import { IamPolicyService } from "@authplat/contracts/auth/iam_policy/v1";
import { MfaService } from "@authplat/contracts/auth/mfa/v1";
import { OAuthService } from "@authplat/contracts/auth/session_identity/v1/oauth";
import { SessionService } from "@authplat/contracts/auth/session_identity/v1/session";
import { UserService } from "@authplat/contracts/auth/session_identity/v1/user";
import { TokenService } from "@authplat/contracts/auth/token/v1";
import { spiffeIdForService } from "@authplat/spiffe";
import { ACCESS_PROFILES, loadAccessRules } from "./access-rules.ts";
import {
  accessRulesTable,
  normalisedRules,
  RULES_SERVICES,
  rulesFromFiles,
  rulesFromReadme,
} from "./access-rules-table.ts";

const root = resolve(import.meta.dirname, "../../../..");

/** What each service process serves (its main.ts passes the same list). */
// auth-edge also serves Envoy's Authorization service, built at run time from Envoy's protos; a
// stand-in with its one method keeps this library from depending on the app.
const ENVOY_AUTHORIZATION = {
  typeName: "envoy.service.auth.v3.Authorization",
  methods: [{ name: "Check", localName: "check" }],
} as unknown as DescService;

const SERVED: Record<string, readonly DescService[]> = {
  token: [TokenService],
  "auth-edge": [AuthEdgeService, ENVOY_AUTHORIZATION],
  "session-identity": [SessionService, UserService, OAuthService],
  "iam-policy": [IamPolicyService],
  mfa: [MfaService],
};

function fileOf(service: string) {
  const file = join(root, "apps", service, "src", "access-rules.json");
  return { file, content: JSON.parse(readFileSync(file, "utf8")) as unknown };
}

describe("the services' access-rules.json files", () => {
  it.each(RULES_SERVICES)(
    "%s: valid in both profiles for exactly the methods it serves",
    (name) => {
      for (const profile of ACCESS_PROFILES) {
        const rules = loadAccessRules({
          rules: fileOf(name),
          services: SERVED[name]!,
          trustDomain: "auth.local",
          profile,
        });
        expect(rules.methods().length).toBe(
          SERVED[name]!.reduce((n, service) => n + service.methods.length, 0),
        );
      }
    },
  );

  it.each(Object.keys(SERVED))(
    "%s's rules file names each method once (JSON.parse would silently keep the last)",
    (name) => {
      const text = readFileSync(join(root, "apps", name, "src", "access-rules.json"), "utf8");
      const methods = [...text.matchAll(/^\s*"(\/[^"]+)"\s*:/gm)].map((m) => m[1]!);
      expect(methods.length).toBeGreaterThan(0);
      expect(methods.filter((method, i) => methods.indexOf(method) !== i)).toEqual([]);
    },
  );

  it("never let the operator mint tokens in production (IssueTokenPair, RefreshTokens, IssueIdToken)", () => {
    const operator = spiffeIdForService("auth.local", "operator");
    const production = loadAccessRules({
      rules: fileOf("token"),
      services: [TokenService],
      trustDomain: "auth.local",
      profile: "production",
    });
    for (const method of ["IssueTokenPair", "RefreshTokens", "IssueIdToken"]) {
      expect({
        method,
        allowed: production.isAllowed(`/auth.token.v1.TokenService/${method}`, operator),
      }).toEqual({ method, allowed: false });
    }
    for (const method of ["GetJwks", "RevokeToken"]) {
      expect(production.isAllowed(`/auth.token.v1.TokenService/${method}`, operator)).toBe(true);
    }
  });

  it("match the README's Caller allowlists table in both profiles", () => {
    const fromFiles = rulesFromFiles(root);
    const fromReadme = rulesFromReadme(readFileSync(join(root, "README.md"), "utf8"));
    const expected = normalisedRules(fromFiles);
    const actual = normalisedRules(fromReadme);
    if (!isDeepStrictEqual(actual, expected)) {
      // Print what to paste (then run prettier on README.md).
      console.error(
        `README "Caller allowlists" is out of date; the table from the files is:\n\n${accessRulesTable(fromFiles)}`,
      );
    }
    expect(actual).toEqual(expected);
    expect(fromReadme.length).toBe(fromFiles.length);
  });
});

describe("rulesFromReadme", () => {
  const readme = (table: string) => `# x\n\n### Caller allowlists\n\nIntro.\n\n${table}\nAfter.\n`;

  it("reads grouped rows, backticked IDs and 'nobody' back", () => {
    const rows = rulesFromReadme(
      readme(
        [
          "| service | RPC | production | development |",
          "| --- | --- | --- | --- |",
          "| token | IssueTokenPair, RefreshTokens | session-identity | session-identity, operator |",
          "| token | GetJwks | nobody | `spiffe://auth.local/ns/x/y` |",
        ].join("\n"),
      ),
    );
    expect(normalisedRules(rows)).toEqual({
      "token IssueTokenPair":
        "production: session-identity; development: operator, session-identity",
      "token RefreshTokens":
        "production: session-identity; development: operator, session-identity",
      "token GetJwks": "production: ; development: spiffe://auth.local/ns/x/y",
    });
  });

  it("round-trips the generated table", () => {
    const rows = rulesFromFiles(root);
    expect(normalisedRules(rulesFromReadme(readme(accessRulesTable(rows))))).toEqual(
      normalisedRules(rows),
    );
  });

  it("notices a README that differs from the files", () => {
    const rows = rulesFromFiles(root);
    const [first, ...rest] = rows;
    const widened = {
      ...first!,
      callers: { ...first!.callers, production: [...first!.callers.production, "intruder"] },
    };
    const table = accessRulesTable([widened, ...rest]);
    expect(normalisedRules(rulesFromReadme(readme(table)))).not.toEqual(normalisedRules(rows));
  });

  it("fails without the section", () => {
    expect(() => rulesFromReadme("# nothing here\n")).toThrow(
      'README has no "### Caller allowlists" section',
    );
  });
});
