import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { Buffer } from "node:buffer";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createCa, type DevCa, issueSvid, type IssueSvidOptions } from "./dev-pki.ts";
import { SpiffeError } from "./spiffe-error.ts";
import { loadSvidFiles, spiffeIdFromCertificate, svidCacheSize } from "./svid.ts";

const TD = "auth.local";
const TOKEN_ID = "spiffe://auth.local/ns/auth/sa/token";

let ca: DevCa;
let foreignCa: DevCa;
let otherDomainCa: DevCa;

beforeAll(async () => {
  [ca, foreignCa, otherDomainCa] = await Promise.all([
    createCa({ trustDomain: TD }),
    createCa({ trustDomain: TD }),
    createCa({ trustDomain: "other.local" }),
  ]);
});

async function issueDer(
  opts: Partial<IssueSvidOptions> = {},
  from: DevCa = ca,
): Promise<Uint8Array> {
  const svid = await issueSvid(from, { spiffeId: TOKEN_ID, ...opts });
  return new Uint8Array(svid.cert.rawData);
}

async function caught(fn: () => unknown): Promise<SpiffeError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SpiffeError);
    return err as SpiffeError;
  }
  throw new Error("expected a SpiffeError, nothing was thrown");
}

describe("spiffeIdFromCertificate", () => {
  it("returns the SPIFFE ID of a certificate from issueSvid", async () => {
    const id = spiffeIdFromCertificate(await issueDer(), { trustDomain: TD });
    expect(id.toString()).toBe(TOKEN_ID);
    expect(id.trustDomain).toBe(TD);
    expect(id.path).toBe("/ns/auth/sa/token");
  });

  it("accepts DNS SANs beside the one URI SAN (X509-SVID §2)", async () => {
    const der = await issueDer({ dnsNames: ["token.auth.local", "localhost"] });
    expect(spiffeIdFromCertificate(der, { trustDomain: TD }).toString()).toBe(TOKEN_ID);
  });

  it("reads a certificate held in a slice of a larger buffer", async () => {
    const der = await issueDer();
    const big = Buffer.alloc(der.length + 64, 0xff);
    Buffer.from(der).copy(big, 32);
    expect(
      spiffeIdFromCertificate(big.subarray(32, 32 + der.length), { trustDomain: TD }).toString(),
    ).toBe(TOKEN_ID);
  });

  it.each<[string, Partial<IssueSvidOptions>, string, RegExp]>([
    [
      "two URI SANs",
      { overrides: { uris: [TOKEN_ID, "spiffe://auth.local/ns/auth/sa/mfa"] } },
      "uri-san-multiple",
      /X509-SVID §2: the certificate has 2 URI SANs; exactly one is allowed/,
    ],
    [
      "two identical URI SANs",
      { overrides: { uris: [TOKEN_ID, TOKEN_ID] } },
      "uri-san-multiple",
      /2 URI SANs/,
    ],
    [
      "no URI SAN but a DNS SAN",
      { overrides: { uris: [] }, dnsNames: ["token.auth.local"] },
      "uri-san-missing",
      /X509-SVID §2: the certificate has no URI SAN/,
    ],
    ["no SAN extension at all", { overrides: { uris: [] } }, "uri-san-missing", /no URI SAN/],
    [
      "a non-spiffe URI",
      { overrides: { uris: ["https://auth.local/ns/auth/sa/token"] } },
      "uri-san-not-spiffe-id",
      /X509-SVID §2: the URI SAN is not a valid SPIFFE ID \(scheme: /,
    ],
    [
      "an invalid SPIFFE ID",
      { overrides: { uris: ["spiffe://auth.local/ns/../sa/token"] } },
      "uri-san-not-spiffe-id",
      /path-dot-segment/,
    ],
    [
      "a trust-domain-only SPIFFE ID",
      { overrides: { uris: ["spiffe://auth.local"] } },
      "leaf-path-missing",
      /X509-SVID §5\.2: .*must have a path/,
    ],
    [
      "a CA flag",
      { overrides: { isCa: true } },
      "leaf-is-ca",
      /X509-SVID §4\.1: a leaf SVID must have cA set to false/,
    ],
    [
      "keyUsage keyCertSign",
      {
        overrides: {
          keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign,
        },
      },
      "key-usage-ca",
      /X509-SVID §5\.2: a leaf SVID must not set keyCertSign or cRLSign/,
    ],
    [
      "keyUsage cRLSign",
      { overrides: { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.cRLSign } },
      "key-usage-ca",
      /keyCertSign or cRLSign/,
    ],
    [
      "keyUsage without digitalSignature",
      { overrides: { keyUsage: x509.KeyUsageFlags.keyAgreement } },
      "key-usage-digital-signature",
      /X509-SVID §4\.3: a leaf SVID must set digitalSignature/,
    ],
    [
      "no keyUsage extension",
      { overrides: { omitKeyUsage: true } },
      "key-usage-missing",
      /X509-SVID §4\.3: the key usage extension is missing/,
    ],
  ])("rejects a certificate with %s as SVID_INVALID", async (_, opts, reason, message) => {
    const der = await issueDer(opts);
    const err = await caught(() => spiffeIdFromCertificate(der, { trustDomain: TD }));
    expect({ code: err.code, reason: err.reason }).toEqual({ code: "SVID_INVALID", reason });
    expect(err.message).toMatch(message);
  });

  it("rejects a certificate that repeats an extension (RFC 5280 §4.2)", async () => {
    const keys = ca.keys;
    const cert = await x509.X509CertificateGenerator.create({
      subject: "O=SPIFFE",
      issuer: ca.cert.subjectName,
      publicKey: keys.publicKey,
      signingKey: keys.privateKey,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: "url", value: TOKEN_ID }]),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      ],
    });
    const err = await caught(() =>
      spiffeIdFromCertificate(new Uint8Array(cert.rawData), { trustDomain: TD }),
    );
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_INVALID",
      reason: "duplicate-extension",
    });
    expect(err.message).toBe("the certificate repeats extension 2.5.29.15");
  });

  it("rejects the CA certificate itself, whose SPIFFE ID has no path", async () => {
    const err = await caught(() =>
      spiffeIdFromCertificate(new Uint8Array(ca.cert.rawData), { trustDomain: TD }),
    );
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_INVALID",
      reason: "leaf-path-missing",
    });
  });

  it("rejects an SVID of another trust domain as SVID_UNTRUSTED", async () => {
    const der = await issueDer(
      { spiffeId: "spiffe://other.local/ns/auth/sa/token" },
      otherDomainCa,
    );
    const err = await caught(() => spiffeIdFromCertificate(der, { trustDomain: TD }));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_UNTRUSTED",
      reason: "trust-domain-mismatch",
    });
    expect(err.message).toBe(
      'the SVID\'s trust domain "other.local" is not the expected "auth.local"',
    );
  });

  it("rejects bytes that are not a certificate", async () => {
    const err = await caught(() =>
      spiffeIdFromCertificate(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]), { trustDomain: TD }),
    );
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_INVALID",
      reason: "certificate-unparsable",
    });
    expect(err.message).toMatch(/not a parsable DER X\.509 certificate/);
  });

  it("rejects an invalid expected trust domain as SPIFFE_ID_INVALID", async () => {
    const der = await issueDer();
    const err = await caught(() => spiffeIdFromCertificate(der, { trustDomain: "Auth.Local" }));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SPIFFE_ID_INVALID",
      reason: "trust-domain-chars",
    });
  });

  it("gives the same answers from its cache, per expected trust domain", async () => {
    const der = await issueDer();
    const first = spiffeIdFromCertificate(der, { trustDomain: TD });
    expect(spiffeIdFromCertificate(der, { trustDomain: TD })).toBe(first);
    // The cached certificate must still be checked against each caller's trust domain.
    const err = await caught(() => spiffeIdFromCertificate(der, { trustDomain: "other.local" }));
    expect(err.code).toBe("SVID_UNTRUSTED");
    expect(spiffeIdFromCertificate(der, { trustDomain: TD }).toString()).toBe(TOKEN_ID);
  });

  it("throws a fresh error each time a cached rejection is hit again", async () => {
    const der = await issueDer({ overrides: { isCa: true } });
    const a = await caught(() => spiffeIdFromCertificate(der, { trustDomain: TD }));
    const b = await caught(() => spiffeIdFromCertificate(der, { trustDomain: TD }));
    expect(b).not.toBe(a);
    expect([a.reason, b.reason]).toEqual(["leaf-is-ca", "leaf-is-ca"]);
  });

  it("keeps its cache bounded at 1024 certificates", () => {
    for (let i = 0; i < 1100; i++) {
      const junk = new Uint8Array(8);
      new DataView(junk.buffer).setUint32(4, i);
      expect(() => spiffeIdFromCertificate(junk, { trustDomain: TD })).toThrow(SpiffeError);
    }
    expect(svidCacheSize()).toBe(1024);
  });
});

describe("loadSvidFiles", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "spiffe-svid-test-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function files(name: string, contents: { cert: string; key: string; bundle?: string }) {
    const certFile = join(dir, `${name}.pem`);
    const keyFile = join(dir, `${name}-key.pem`);
    const bundleFile = join(dir, `${name}-bundle.pem`);
    await Promise.all([
      writeFile(certFile, contents.cert),
      writeFile(keyFile, contents.key),
      writeFile(bundleFile, contents.bundle ?? ca.certPem),
    ]);
    return { certFile, keyFile, bundleFile, trustDomain: TD };
  }

  it("returns the PEMs, SPIFFE ID and expiry of a consistent set of files", async () => {
    const svid = await issueSvid(ca, { spiffeId: TOKEN_ID });
    const loaded = await loadSvidFiles(
      await files("good", { cert: svid.certPem, key: svid.keyPem }),
    );
    expect(loaded.spiffeId.toString()).toBe(TOKEN_ID);
    expect(loaded.notAfter).toEqual(svid.notAfter);
    expect(loaded.certChainPem).toBe(svid.certPem);
    expect(loaded.keyPem).toBe(svid.keyPem);
    expect(loaded.bundlePem).toBe(ca.certPem);
  });

  it("rejects a key that does not match the certificate, naming both files", async () => {
    const [svid, other] = await Promise.all([
      issueSvid(ca, { spiffeId: TOKEN_ID }),
      issueSvid(ca, { spiffeId: TOKEN_ID }),
    ]);
    const opts = await files("mismatch", { cert: svid.certPem, key: other.keyPem });
    const err = await caught(() => loadSvidFiles(opts));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_KEY_MISMATCH",
      reason: "key-mismatch",
    });
    expect(err.message).toBe(`${opts.keyFile} is not the private key of ${opts.certFile}`);
  });

  it("rejects a missing file as SVID_FILE_UNREADABLE naming it", async () => {
    const svid = await issueSvid(ca, { spiffeId: TOKEN_ID });
    const opts = await files("missing", { cert: svid.certPem, key: svid.keyPem });
    const keyFile = join(dir, "does-not-exist-key.pem");
    const err = await caught(() => loadSvidFiles({ ...opts, keyFile }));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_FILE_UNREADABLE",
      reason: "file-unreadable",
    });
    expect(err.message).toBe(`cannot read the key file ${keyFile}`);
  });

  it("names the certificate file first when several files are missing, every time", async () => {
    const bundleFile = join(dir, "missing-bundle.pem");
    for (let i = 0; i < 20; i++) {
      const certFile = join(dir, `missing-cert-${i}.pem`);
      const keyFile = join(dir, `missing-key-${i}.pem`);
      const err = await caught(() =>
        loadSvidFiles({ certFile, keyFile, bundleFile, trustDomain: TD }),
      );
      expect(err.message).toBe(`cannot read the certificate file ${certFile}`);
    }
  });

  it("rejects a certificate file without a certificate", async () => {
    const svid = await issueSvid(ca, { spiffeId: TOKEN_ID });
    const opts = await files("garbage-cert", { cert: "not a certificate\n", key: svid.keyPem });
    const err = await caught(() => loadSvidFiles(opts));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_INVALID",
      reason: "cert-pem",
    });
    expect(err.message).toBe(`${opts.certFile} holds no PEM certificate`);
  });

  it("rejects an unparsable key file", async () => {
    const svid = await issueSvid(ca, { spiffeId: TOKEN_ID });
    const opts = await files("garbage-key", {
      cert: svid.certPem,
      key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    });
    const err = await caught(() => loadSvidFiles(opts));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_INVALID",
      reason: "key-pem",
    });
    expect(err.message).toBe(`${opts.keyFile} does not hold a parsable private key`);
  });

  it("rejects an SVID signed by a CA outside the bundle", async () => {
    const svid = await issueSvid(foreignCa, { spiffeId: TOKEN_ID });
    const opts = await files("foreign", { cert: svid.certPem, key: svid.keyPem });
    const err = await caught(() => loadSvidFiles(opts));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_UNTRUSTED",
      reason: "chain-untrusted",
    });
    expect(err.message).toBe(`${opts.certFile} is not signed by a CA of ${opts.bundleFile}`);
  });

  it("accepts an SVID signed by any CA of a multi-CA bundle", async () => {
    const svid = await issueSvid(foreignCa, { spiffeId: TOKEN_ID });
    const opts = await files("multi", {
      cert: svid.certPem,
      key: svid.keyPem,
      bundle: ca.certPem + foreignCa.certPem,
    });
    expect((await loadSvidFiles(opts)).spiffeId.toString()).toBe(TOKEN_ID);
  });

  it("rejects an SVID of another trust domain, naming the file", async () => {
    const svid = await issueSvid(otherDomainCa, {
      spiffeId: "spiffe://other.local/ns/auth/sa/token",
    });
    const opts = await files("other-td", {
      cert: svid.certPem,
      key: svid.keyPem,
      bundle: otherDomainCa.certPem,
    });
    const err = await caught(() => loadSvidFiles(opts));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_UNTRUSTED",
      reason: "trust-domain-mismatch",
    });
    expect(err.message).toMatch(
      new RegExp(`^${opts.certFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `),
    );
  });

  it("rejects a certificate that is not a valid leaf SVID", async () => {
    const svid = await issueSvid(ca, { spiffeId: TOKEN_ID, overrides: { isCa: true } });
    const opts = await files("ca-leaf", { cert: svid.certPem, key: svid.keyPem });
    const err = await caught(() => loadSvidFiles(opts));
    expect({ code: err.code, reason: err.reason }).toEqual({
      code: "SVID_INVALID",
      reason: "leaf-is-ca",
    });
  });

  it("rejects an SVID that has expired or is not yet valid at `now`", async () => {
    const now = new Date("2030-01-01T00:00:00Z");
    const ca2030 = await createCa({ trustDomain: TD, now });
    const svid = await issueSvid(ca2030, { spiffeId: TOKEN_ID, now, validityMs: 60 * 60 * 1000 });
    const opts = await files("timed", {
      cert: svid.certPem,
      key: svid.keyPem,
      bundle: ca2030.certPem,
    });
    await expect(loadSvidFiles({ ...opts, now })).resolves.toMatchObject({
      notAfter: new Date("2030-01-01T01:00:00Z"),
    });
    const expired = await caught(() =>
      loadSvidFiles({ ...opts, now: new Date("2030-01-01T02:00:00Z") }),
    );
    expect({ code: expired.code, reason: expired.reason }).toEqual({
      code: "SVID_UNTRUSTED",
      reason: "expired",
    });
    const early = await caught(() =>
      loadSvidFiles({ ...opts, now: new Date("2029-12-31T00:00:00Z") }),
    );
    expect({ code: early.code, reason: early.reason }).toEqual({
      code: "SVID_UNTRUSTED",
      reason: "not-yet-valid",
    });
  });
});
