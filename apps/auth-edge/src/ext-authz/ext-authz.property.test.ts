import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { validatedClaims } from "../tokens/claims-fixture.ts";
import type { ValidatedClaims } from "../tokens/token-validator.ts";
import { parseBearerCredentials } from "./bearer-credentials.ts";
import { headerValueOf, httpAnswerFor, IDENTITY_HEADERS, type HttpAnswer } from "./http-answer.ts";

// What Envoy does with an OK answer (source/extensions/filters/http/ext_authz/ext_authz.cc,
// Filter::onComplete): every header with OVERWRITE_IF_EXISTS_OR_ADD replaces the request's
// values of that name, then every name in headers_to_remove is removed. Written from that
// contract, not from our implementation.
function envoyApplies(
  request: ReadonlyMap<string, readonly string[]>,
  answer: HttpAnswer,
): Map<string, readonly string[]> {
  if (!answer.allowed) throw new Error("expected an allowed answer");
  const upstream = new Map(request);
  for (const { key, value } of answer.headersToSet) upstream.set(key, [value]);
  for (const key of answer.headersToRemove) upstream.delete(key);
  return upstream;
}

const identityNames = Object.values(IDENTITY_HEADERS);
const claimText = fc.string({ unit: "binary", maxLength: 40 });

const claimsArb = fc.record({
  subject: claimText.filter((s) => s !== ""),
  clientId: claimText.filter((s) => s !== ""),
  scopes: fc.array(fc.stringMatching(/^[\x21\x23-\x5b\x5d-\x7e]{1,12}$/), { maxLength: 4 }),
  sessionId: fc.option(claimText, { nil: undefined }),
});

type ClaimsInput = typeof claimsArb extends fc.Arbitrary<infer T> ? T : never;

// Whatever a client may send: any of the identity headers (repeated, any value) and others.
const clientHeadersArb = fc
  .array(
    fc.tuple(
      fc.constantFrom(...identityNames, "authorization", "accept", "x-authplat-other"),
      fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 3 }),
    ),
    { maxLength: 8 },
  )
  .map((entries) => new Map(entries));

function claimsOf(c: ClaimsInput): ValidatedClaims {
  return validatedClaims({
    subject: c.subject,
    clientId: c.clientId,
    scopes: c.scopes,
    sessionId: c.sessionId,
  });
}

// Characters a claim may hold that an HTTP field value must not, or that need care, mixed with
// any other (well-formed) characters.
const headerHostileChar = fc.oneof(
  fc.constantFrom("\u0000", "\r", "\n", "\t", "\u007f", "%", "\u00e9", "\u{1f600}"),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }),
);

describe("ext_authz answers, as Envoy applies them", () => {
  it("ext_authz property: after Envoy applies an allowed answer, the upstream's identity headers are exactly the verified claims (or absent), whatever the client sent, and authorization goes on only when configured", () => {
    fc.assert(
      fc.property(claimsArb, clientHeadersArb, fc.boolean(), (c, sent, forward) => {
        const answer = httpAnswerFor(
          { kind: "allowed", claims: claimsOf(c), policyIds: [] },
          { realm: "authplat", forwardAuthorization: forward },
        );
        const upstream = envoyApplies(sent, answer);
        const expected: Record<string, string | undefined> = {
          [IDENTITY_HEADERS.subject]: c.subject,
          [IDENTITY_HEADERS.clientId]: c.clientId,
          [IDENTITY_HEADERS.scopes]: c.scopes.length === 0 ? undefined : c.scopes.join(" "),
          [IDENTITY_HEADERS.sessionId]: c.sessionId === "" ? undefined : c.sessionId,
        };
        for (const name of identityNames) {
          const want = expected[name];
          expect(upstream.get(name)).toEqual(
            want === undefined ? undefined : [headerValueOf(want)],
          );
        }
        expect(upstream.get("authorization")).toEqual(
          forward ? sent.get("authorization") : undefined,
        );
        // Headers that are not ours pass untouched.
        expect(upstream.get("accept")).toEqual(sent.get("accept"));
        expect(upstream.get("x-authplat-other")).toEqual(sent.get("x-authplat-other"));
      }),
    );
  });

  it("ext_authz property: every identity header value is printable ASCII and decodes back to the claim", () => {
    fc.assert(
      fc.property(fc.string({ unit: headerHostileChar, maxLength: 40 }), (claim) => {
        const value = headerValueOf(claim);
        expect(value).toMatch(/^[\x20-\x7e]*$/);
        expect(decodeURIComponent(value)).toBe(claim);
      }),
    );
  });
});

// RFC 6750 §2.1 b64token, and ways of writing the scheme and the separator.
const b64token = fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,60}=*$/);
const bearerScheme = fc.constantFrom("Bearer", "bearer", "BEARER", "bEaReR");
const spaces = fc.stringMatching(/^ {1,3}$/);

describe("parseBearerCredentials", () => {
  it("ext_authz property: reads exactly the one token of any well-formed Bearer header, whatever the scheme's case and the spacing", () => {
    fc.assert(
      fc.property(bearerScheme, spaces, b64token, (scheme, gap, token) => {
        expect(parseBearerCredentials(`${scheme}${gap}${token}`)).toEqual({ kind: "token", token });
        expect(parseBearerCredentials(` ${scheme}${gap}${token} `)).toEqual({
          kind: "token",
          token,
        });
      }),
    );
  });

  it("ext_authz property: never takes a token from a Bearer header holding two tokens, or one with characters outside b64token", () => {
    fc.assert(
      fc.property(
        bearerScheme,
        b64token,
        fc.oneof(
          b64token.map((second) => ` ${second}`),
          b64token.map((second) => `,${second}`),
          b64token.map((second) => `, Bearer ${second}`),
          fc.constantFrom('"x', "\\x", "\tx", "\nx", "%x", "éx", "=a"),
        ),
        (scheme, token, tail) => {
          expect(parseBearerCredentials(`${scheme} ${token}${tail}`)).toEqual({
            kind: "malformed",
          });
        },
      ),
    );
  });
});
