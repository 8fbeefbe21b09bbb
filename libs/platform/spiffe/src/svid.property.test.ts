import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";

import { createCa, type DevCa, issueSvid } from "./dev-pki.ts";
import { SpiffeError } from "./spiffe-error.ts";
import { spiffeIdFromCertificate } from "./svid.ts";

// Issuing a certificate costs about a millisecond; 50 runs per property keep the suite quick.
const NUM_RUNS = 50;

// SPIFFE-ID §2.1 and §2.2 alphabets.
const TD_ALPHABET = [..."abcdefghijklmnopqrstuvwxyz0123456789.-_"];
const SEGMENT_ALPHABET = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"];

const trustDomainArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.string({ unit: fc.constantFrom(...TD_ALPHABET), minLength: 1, maxLength: 24 }),
  },
  {
    weight: 1,
    arbitrary: fc.string({ unit: fc.constantFrom(...TD_ALPHABET), minLength: 200, maxLength: 255 }),
  },
);
const segmentArb = fc
  .string({ unit: fc.constantFrom(...SEGMENT_ALPHABET), minLength: 1, maxLength: 16 })
  .filter((s) => s !== "." && s !== "..");
const leafIdArb = fc
  .record({
    trustDomain: trustDomainArb,
    segments: fc.array(segmentArb, { minLength: 1, maxLength: 8 }),
  })
  .map(({ trustDomain, segments }) => ({
    trustDomain,
    path: `/${segments.join("/")}`,
    uri: `spiffe://${trustDomain}/${segments.join("/")}`,
  }))
  .filter(({ uri }) => uri.length <= 2048);
const dnsNamesArb = fc.array(fc.domain(), { maxLength: 2 });

/** Turns a valid leaf SPIFFE ID into a string that breaks exactly one SPIFFE-ID §2 rule. */
const invalidUriArb = fc
  .tuple(
    leafIdArb,
    fc.constantFrom(
      (td: string, path: string) => `SPIFFE://${td}${path}`,
      (td: string, path: string) => `https://${td}${path}`,
      (td: string, path: string) => `spiffe:/${td}${path}`,
      (td: string, path: string) => `spiffe://${td}A${path}`,
      (td: string, path: string) => `spiffe://${td}:8443${path}`,
      (td: string, path: string) => `spiffe://user@${td}${path}`,
      (_td: string, path: string) => `spiffe://${path}`,
      (td: string, path: string) => `spiffe://${td}${path}/`,
      (td: string, path: string) => `spiffe://${td}${path}//x`,
      (td: string, path: string) => `spiffe://${td}${path}/..`,
      (td: string, path: string) => `spiffe://${td}/.${path}`,
      (td: string, path: string) => `spiffe://${td}${path}?q=1`,
      (td: string, path: string) => `spiffe://${td}${path}#f`,
      (td: string, path: string) => `spiffe://${td}${path}%41`,
      (td: string, path: string) => `spiffe://${td}${path}/a b`,
      (td: string, path: string) => `spiffe://${td}${path}/~`,
    ),
  )
  .map(([id, mutate]) => mutate(id.trustDomain, id.path));

interface BadCase {
  readonly kind: string;
  readonly uris: readonly string[];
  readonly expectedTrustDomain: string;
  readonly code: string;
  readonly reason: string;
}

const badSanSetArb: fc.Arbitrary<BadCase> = fc.oneof(
  fc.record({ trustDomain: trustDomainArb }).map(({ trustDomain }) => ({
    kind: "zero URI SANs",
    uris: [],
    expectedTrustDomain: trustDomain,
    code: "SVID_INVALID",
    reason: "uri-san-missing",
  })),
  fc.array(leafIdArb, { minLength: 2, maxLength: 4 }).map((ids) => ({
    kind: "several URI SANs",
    uris: ids.map((id) => id.uri),
    expectedTrustDomain: ids[0]!.trustDomain,
    code: "SVID_INVALID",
    reason: "uri-san-multiple",
  })),
  fc
    .tuple(fc.array(leafIdArb, { minLength: 1, maxLength: 2 }), invalidUriArb)
    .map(([ids, bad]) => ({
      kind: "several URI SANs, one invalid",
      uris: [...ids.map((id) => id.uri), bad],
      expectedTrustDomain: ids[0]!.trustDomain,
      code: "SVID_INVALID",
      reason: "uri-san-multiple",
    })),
  fc.tuple(invalidUriArb, trustDomainArb).map(([bad, trustDomain]) => ({
    kind: "one invalid SPIFFE ID",
    uris: [bad],
    expectedTrustDomain: trustDomain,
    code: "SVID_INVALID",
    reason: "uri-san-not-spiffe-id",
  })),
  trustDomainArb.map((trustDomain) => ({
    kind: "a trust-domain-only SPIFFE ID",
    uris: [`spiffe://${trustDomain}`],
    expectedTrustDomain: trustDomain,
    code: "SVID_INVALID",
    reason: "leaf-path-missing",
  })),
  fc
    .tuple(leafIdArb, trustDomainArb)
    .filter(([id, other]) => id.trustDomain !== other)
    .map(([id, other]) => ({
      kind: "another trust domain",
      uris: [id.uri],
      expectedTrustDomain: other,
      code: "SVID_UNTRUSTED",
      reason: "trust-domain-mismatch",
    })),
);

let ca: DevCa;

beforeAll(async () => {
  ca = await createCa({ trustDomain: "auth.local" });
});

describe("Property 7: SPIFFE ID extraction accuracy", () => {
  it("Property 7: SPIFFE ID extraction accuracy — a certificate issued for any valid SPIFFE ID yields exactly that ID", async () => {
    await fc.assert(
      fc.asyncProperty(leafIdArb, dnsNamesArb, async (id, dnsNames) => {
        // `uris` lets one CA issue for every generated trust domain; extraction does not check
        // the chain, and every other property of the certificate is that of a normal SVID.
        const svid = await issueSvid(ca, {
          spiffeId: id.uri,
          dnsNames,
          overrides: { uris: [id.uri] },
        });
        const extracted = spiffeIdFromCertificate(new Uint8Array(svid.cert.rawData), {
          trustDomain: id.trustDomain,
        });
        expect(extracted.toString()).toBe(id.uri);
        expect(extracted.trustDomain).toBe(id.trustDomain);
        expect(extracted.path).toBe(id.path);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("Property 7: SPIFFE ID extraction accuracy — any invalid URI SAN set is rejected with the right code", async () => {
    await fc.assert(
      fc.asyncProperty(badSanSetArb, dnsNamesArb, async (bad, dnsNames) => {
        const svid = await issueSvid(ca, {
          spiffeId: "spiffe://auth.local/unused",
          dnsNames,
          overrides: { uris: bad.uris },
        });
        const der = new Uint8Array(svid.cert.rawData);
        let thrown: unknown;
        try {
          spiffeIdFromCertificate(der, { trustDomain: bad.expectedTrustDomain });
        } catch (err) {
          thrown = err;
        }
        expect(thrown, bad.kind).toBeInstanceOf(SpiffeError);
        const err = thrown as SpiffeError;
        expect({ kind: bad.kind, code: err.code, reason: err.reason }).toEqual({
          kind: bad.kind,
          code: bad.code,
          reason: bad.reason,
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
