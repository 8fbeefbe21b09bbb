import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { X509Certificate as NodeX509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tls from "node:tls";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  createCa,
  DEV_IDENTITIES,
  ensureDevPki,
  type EnsureDevPkiResult,
  issueSvid,
} from "./dev-pki.ts";
import { SpiffeError } from "./spiffe-error.ts";
import { spiffeIdFromCertificate } from "./svid.ts";

const HOUR = 60 * 60 * 1000;
const T0 = new Date("2031-03-01T12:00:00Z");

let dir: string;

beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), "spiffe-dev-pki-test-")), "pki");
});

afterEach(async () => {
  await rm(join(dir, ".."), { recursive: true, force: true });
});

async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(dir)).sort())
    out[name] = await readFile(join(dir, name), "utf8");
  return out;
}

async function mode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

/** Checks every leaf chains to the bundle with both @peculiar/x509 and Node's OpenSSL binding. */
async function expectLeavesSignedByBundle(result: EnsureDevPkiResult): Promise<void> {
  const bundlePem = await readFile(result.files.bundleFile, "utf8");
  const caCert = new x509.X509Certificate(bundlePem);
  const nodeCa = new NodeX509Certificate(bundlePem);
  for (const identity of Object.values(result.files.identities)) {
    const pem = await readFile(identity.certFile, "utf8");
    expect(
      await new x509.X509Certificate(pem).verify({
        publicKey: caCert.publicKey,
        signatureOnly: true,
      }),
    ).toBe(true);
    const leaf = new NodeX509Certificate(pem);
    expect(leaf.verify(nodeCa.publicKey)).toBe(true);
    expect(leaf.checkIssued(nodeCa)).toBe(true);
    expect(
      spiffeIdFromCertificate(new Uint8Array(leaf.raw), { trustDomain: "auth.local" }).toString(),
    ).toBe(identity.spiffeId);
  }
}

describe("ensureDevPki", () => {
  it("generates the CA and one SVID per identity with private modes", async () => {
    const result = await ensureDevPki({ dir, now: T0 });
    expect(result.regenerated).toBe(true);
    expect(result.renewed).toEqual([...DEV_IDENTITIES]);

    const expected = [
      "bundle.pem",
      "ca-key.pem",
      ...DEV_IDENTITIES.flatMap((n) => [`${n}.pem`, `${n}-key.pem`]),
    ];
    expect((await readdir(dir)).sort()).toEqual(expected.sort());
    expect(await mode(dir)).toBe(0o700);
    expect(await mode(result.files.caKeyFile)).toBe(0o600);
    expect(await mode(result.files.bundleFile)).toBe(0o644);
    for (const name of DEV_IDENTITIES) {
      const files = result.files.identities[name]!;
      expect(files.spiffeId).toBe(`spiffe://auth.local/ns/auth/sa/${name}`);
      expect(await mode(files.keyFile)).toBe(0o600);
      expect(await mode(files.certFile)).toBe(0o644);
      // The SVID file holds the leaf only.
      expect((await readFile(files.certFile, "utf8")).match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    }
    await expectLeavesSignedByBundle(result);
  });

  it("writes a bundle holding only a critical cA=true CA with keyCertSign|cRLSign and the trust domain's URI SAN", async () => {
    const result = await ensureDevPki({ dir, now: T0 });
    const bundlePem = await readFile(result.files.bundleFile, "utf8");
    expect(bundlePem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
    const ca = new x509.X509Certificate(bundlePem);
    const bc = ca.getExtension(x509.BasicConstraintsExtension)!;
    expect({ ca: bc.ca, critical: bc.critical }).toEqual({ ca: true, critical: true });
    const ku = ca.getExtension(x509.KeyUsagesExtension)!;
    expect({ usages: ku.usages, critical: ku.critical }).toEqual({
      usages: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
      critical: true,
    });
    expect(ca.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([
      { type: "url", value: "spiffe://auth.local" },
    ]);
    expect(ca.notAfter.getTime() - T0.getTime()).toBe(30 * 24 * HOUR);
  });

  it("issues leaves with cA=false, digitalSignature|keyEncipherment, serverAuth+clientAuth and key identifiers", async () => {
    const result = await ensureDevPki({ dir, now: T0 });
    const ca = new x509.X509Certificate(await readFile(result.files.bundleFile, "utf8"));
    const leaf = new x509.X509Certificate(
      await readFile(result.files.identities["token"]!.certFile, "utf8"),
    );
    const bc = leaf.getExtension(x509.BasicConstraintsExtension)!;
    expect({ ca: bc.ca, critical: bc.critical }).toEqual({ ca: false, critical: true });
    expect(leaf.getExtension(x509.KeyUsagesExtension)!.usages).toBe(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    );
    expect(leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    expect(leaf.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(
      ca.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
    );
    expect(leaf.getExtension(x509.SubjectKeyIdentifierExtension)).not.toBeNull();
    expect(leaf.subject).toBe("O=SPIFFE");
    expect(leaf.serialNumber.replace(/^00/, "")).toMatch(/^[0-9a-f]{30,32}$/);
    expect(leaf.notAfter.getTime() - T0.getTime()).toBe(24 * HOUR);
  });

  it("does nothing on a second call when everything is still good", async () => {
    await ensureDevPki({ dir, now: T0 });
    const before = await snapshot();
    const again = await ensureDevPki({ dir, now: new Date(T0.getTime() + 2 * HOUR) });
    expect({ regenerated: again.regenerated, renewed: again.renewed, notes: again.notes }).toEqual({
      regenerated: false,
      renewed: [],
      notes: [],
    });
    expect(await snapshot()).toEqual(before);
  });

  it("renews SVIDs about to expire without regenerating the CA", async () => {
    await ensureDevPki({ dir, now: T0 });
    const before = await snapshot();
    const later = new Date(T0.getTime() + 23.5 * HOUR);
    const result = await ensureDevPki({ dir, now: later });
    expect(result.regenerated).toBe(false);
    expect(result.renewed).toEqual([...DEV_IDENTITIES]);
    expect(result.notes[0]).toBe("renewed auth-edge: expires soon");
    const after = await snapshot();
    expect(after["bundle.pem"]).toBe(before["bundle.pem"]);
    expect(after["ca-key.pem"]).toBe(before["ca-key.pem"]);
    expect(after["token.pem"]).not.toBe(before["token.pem"]);
    expect(after["token-key.pem"]).not.toBe(before["token-key.pem"]);
    const leaf = new x509.X509Certificate(after["token.pem"]!);
    expect(leaf.notAfter.getTime()).toBe(later.getTime() + 24 * HOUR);
    await expectLeavesSignedByBundle(result);
  });

  it("renews only the SVIDs that expire soon", async () => {
    await ensureDevPki({ dir, now: T0, identities: ["token", "mfa"] });
    // Added later, so it expires 12 h after the others.
    const added = await ensureDevPki({
      dir,
      now: new Date(T0.getTime() + 12 * HOUR),
      identities: ["token", "mfa", "operator"],
    });
    expect({ regenerated: added.regenerated, renewed: added.renewed }).toEqual({
      regenerated: false,
      renewed: ["operator"],
    });
    expect(added.notes).toEqual([
      expect.stringMatching(
        /^renewed operator: file-unreadable: cannot read the certificate file /,
      ),
    ]);

    const operatorBefore = await readFile(added.files.identities["operator"]!.certFile, "utf8");
    const result = await ensureDevPki({
      dir,
      now: new Date(T0.getTime() + 23.5 * HOUR),
      identities: ["token", "mfa", "operator"],
    });
    expect({ regenerated: result.regenerated, renewed: result.renewed }).toEqual({
      regenerated: false,
      renewed: ["token", "mfa"],
    });
    expect(await readFile(result.files.identities["operator"]!.certFile, "utf8")).toBe(
      operatorBefore,
    );
  });

  it("reissues an SVID that the bundle CA did not sign, keeping the CA", async () => {
    const first = await ensureDevPki({ dir, now: T0 });
    const foreign = await createCa({ trustDomain: "auth.local", now: T0 });
    const impostor = await issueSvid(foreign, {
      spiffeId: "spiffe://auth.local/ns/auth/sa/token",
      now: T0,
    });
    await writeFile(first.files.identities["token"]!.certFile, impostor.certPem);
    await writeFile(first.files.identities["token"]!.keyFile, impostor.keyPem);
    const bundle = await readFile(first.files.bundleFile, "utf8");

    const result = await ensureDevPki({ dir, now: T0 });
    expect({ regenerated: result.regenerated, renewed: result.renewed }).toEqual({
      regenerated: false,
      renewed: ["token"],
    });
    expect(result.notes).toEqual([expect.stringMatching(/^renewed token: chain-untrusted: /)]);
    expect(await readFile(result.files.bundleFile, "utf8")).toBe(bundle);
    await expectLeavesSignedByBundle(result);
  });

  it("reissues an SVID whose key file does not match its certificate", async () => {
    const first = await ensureDevPki({ dir, now: T0 });
    await writeFile(
      first.files.identities["mfa"]!.keyFile,
      await readFile(first.files.identities["token"]!.keyFile),
    );
    const result = await ensureDevPki({ dir, now: T0 });
    expect({ regenerated: result.regenerated, renewed: result.renewed }).toEqual({
      regenerated: false,
      renewed: ["mfa"],
    });
    expect(result.notes).toEqual([expect.stringMatching(/^renewed mfa: key-mismatch: /)]);
  });

  it("regenerates everything when the bundle is corrupted", async () => {
    const first = await ensureDevPki({ dir, now: T0 });
    const before = await snapshot();
    await writeFile(
      first.files.bundleFile,
      "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    );
    const result = await ensureDevPki({ dir, now: T0 });
    expect(result.regenerated).toBe(true);
    expect(result.renewed).toEqual([...DEV_IDENTITIES]);
    expect(result.notes).toEqual([
      expect.stringMatching(/^regenerated everything: CA files unparsable/),
    ]);
    const after = await snapshot();
    expect(after["bundle.pem"]).not.toBe(before["bundle.pem"]);
    expect(after["ca-key.pem"]).not.toBe(before["ca-key.pem"]);
    for (const name of DEV_IDENTITIES) expect(after[`${name}.pem`]).not.toBe(before[`${name}.pem`]);
    await expectLeavesSignedByBundle(result);
  });

  it.each<[string, (files: EnsureDevPkiResult["files"]) => Promise<void>, RegExp]>([
    ["the CA key is missing", (f) => rm(f.caKeyFile), /CA files unreadable/],
    [
      "the CA key belongs to another CA",
      async (f) => writeFile(f.caKeyFile, (await createCa({ trustDomain: "auth.local" })).keyPem),
      /ca-key\.pem does not match/,
    ],
    [
      "the bundle is a leaf, not a CA",
      async (f) => writeFile(f.bundleFile, await readFile(f.identities["token"]!.certFile)),
      /not a self-signed CA/,
    ],
  ])("regenerates everything when %s", async (_, damage, note) => {
    const first = await ensureDevPki({ dir, now: T0 });
    await damage(first.files);
    const result = await ensureDevPki({ dir, now: T0 });
    expect(result.regenerated).toBe(true);
    expect(result.notes).toEqual([expect.stringMatching(note)]);
    await expectLeavesSignedByBundle(result);
  });

  it("regenerates everything for another trust domain", async () => {
    await ensureDevPki({ dir, now: T0 });
    const result = await ensureDevPki({ dir, now: T0, trustDomain: "other.local" });
    expect(result.regenerated).toBe(true);
    expect(result.notes).toEqual([
      "regenerated everything: bundle.pem is not the CA of trust domain other.local",
    ]);
    expect(result.files.identities["token"]!.spiffeId).toBe(
      "spiffe://other.local/ns/auth/sa/token",
    );
    const ca = new x509.X509Certificate(await readFile(result.files.bundleFile, "utf8"));
    expect(ca.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON()).toEqual([
      { type: "url", value: "spiffe://other.local" },
    ]);
  });

  it("regenerates everything when the CA expires within renewBeforeMs", async () => {
    await ensureDevPki({ dir, now: T0 });
    const result = await ensureDevPki({
      dir,
      now: new Date(T0.getTime() + 30 * 24 * HOUR - 30 * 60 * 1000),
    });
    expect(result.regenerated).toBe(true);
    expect(result.notes).toEqual(["regenerated everything: the CA expires soon"]);
  });

  it("regenerates everything when forced", async () => {
    await ensureDevPki({ dir, now: T0 });
    const before = await snapshot();
    const result = await ensureDevPki({ dir, now: T0, force: true });
    expect(result.regenerated).toBe(true);
    expect((await snapshot())["bundle.pem"]).not.toBe(before["bundle.pem"]);
  });

  it("caps an SVID's lifetime at its CA's expiry", async () => {
    const ca = await createCa({ trustDomain: "auth.local", now: T0, validityMs: 2 * HOUR });
    const svid = await issueSvid(ca, { spiffeId: "spiffe://auth.local/ns/auth/sa/token", now: T0 });
    expect(svid.notAfter).toEqual(ca.cert.notAfter);
  });

  it("leaves no temporary files behind", async () => {
    await ensureDevPki({ dir, now: T0 });
    await ensureDevPki({ dir, now: new Date(T0.getTime() + 23.5 * HOUR) });
    expect((await readdir(dir)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
  });

  it.each([
    [["token", "bundle"], /identity name "bundle" is reserved/],
    [["ca"], /identity name "ca" is reserved/],
    [["token", "token"], /identity "token" is listed twice/],
  ])("refuses identities %j", async (identities, message) => {
    await expect(ensureDevPki({ dir, identities })).rejects.toThrow(message);
  });

  it("refuses an identity name that is not a SPIFFE path segment", async () => {
    const err = await ensureDevPki({ dir, identities: ["../escape"] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpiffeError);
    expect((err as SpiffeError).reason).toBe("path-chars");
  });

  it("refuses a renewBeforeMs that is not shorter than the SVID lifetime", async () => {
    await expect(ensureDevPki({ dir, svidValidityMs: HOUR, renewBeforeMs: HOUR })).rejects.toThrow(
      "renewBeforeMs must be at least 0 and less than svidValidityMs",
    );
  });

  it("produces certificates that complete a mutual TLS handshake with SPIFFE IDs on both sides", async () => {
    const { files } = await ensureDevPki({ dir });
    const read = (p: string) => readFile(p, "utf8");
    const ca = await read(files.bundleFile);
    const token = files.identities["token"]!;
    const operator = files.identities["operator"]!;

    const server = tls.createServer({
      cert: await read(token.certFile),
      key: await read(token.keyFile),
      ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.3",
    });
    const peerId = new Promise<string>((resolve) => {
      server.once("secureConnection", (socket) => {
        resolve(
          spiffeIdFromCertificate(socket.getPeerCertificate().raw, {
            trustDomain: "auth.local",
          }).toString(),
        );
        socket.end();
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const client = tls.connect({
        host: "127.0.0.1",
        port: (server.address() as AddressInfo).port,
        cert: await read(operator.certFile),
        key: await read(operator.keyFile),
        ca,
        // SPIFFE certificates carry a URI SAN, not a host name: check the server's SPIFFE ID.
        checkServerIdentity: (_host, cert) => {
          const id = spiffeIdFromCertificate(cert.raw, { trustDomain: "auth.local" }).toString();
          return id === token.spiffeId ? undefined : new Error(`unexpected server ${id}`);
        },
      });
      await once(client, "secureConnect");
      expect(client.authorized).toBe(true);
      expect(await peerId).toBe(operator.spiffeId);
      // The server ends the connection; drain to its end so neither side sees a reset.
      client.resume();
      await once(client, "end");
      client.end();
      await once(client, "close");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
