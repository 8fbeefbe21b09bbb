/**
 * A throwaway PKI for development and tests: one self-signed CA per trust domain and one
 * X509-SVID per identity, in the shape SPIRE would hand out. Never use it in production: the CA
 * key sits in a file next to the certificates.
 */
// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API
// installed before the library module is evaluated.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { Buffer } from "node:buffer";
import {
  createPrivateKey,
  createPublicKey,
  randomBytes,
  X509Certificate as NodeX509Certificate,
  type webcrypto,
} from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SpiffeError } from "./spiffe-error.ts";
import { parseSpiffeId, parseTrustDomain, spiffeIdForService, type SpiffeId } from "./spiffe-id.ts";
import { loadSvidFiles } from "./svid.ts";

x509.cryptoProvider.set(globalThis.crypto);

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" } as const;
const HOUR_MS = 60 * 60 * 1000;
// Certificates start slightly in the past so a peer whose clock runs a little behind accepts them.
const NOT_BEFORE_BACKDATE_MS = 60 * 1000;

/** Defaults of the development PKI: trust domain `auth.local`, SVIDs 24 h, CA 30 days, renew 1 h before expiry. */
export const DEV_PKI_DEFAULTS: Readonly<{
  trustDomain: string;
  svidValidityMs: number;
  caValidityMs: number;
  renewBeforeMs: number;
}> = Object.freeze({
  trustDomain: "auth.local",
  svidValidityMs: 24 * HOUR_MS,
  caValidityMs: 30 * 24 * HOUR_MS,
  renewBeforeMs: HOUR_MS,
});

/** The identities of the platform: the five services and the operator used by tools and tests. */
export const DEV_IDENTITIES: readonly string[] = Object.freeze([
  "auth-edge",
  "token",
  "session-identity",
  "iam-policy",
  "mfa",
  "operator",
]);

/** A development CA: its certificate, its key pair, and both as PEM. */
export interface DevCa {
  /** Trust domain the CA is authoritative for (its URI SAN is `spiffe://<trustDomain>`). */
  readonly trustDomain: string;
  /** The CA certificate, PEM, newline-terminated. */
  readonly certPem: string;
  /** The CA private key, PKCS#8 PEM, newline-terminated. */
  readonly keyPem: string;
  /** The parsed CA certificate. */
  readonly cert: x509.X509Certificate;
  /** The CA key pair (WebCrypto, ECDSA P-256). */
  readonly keys: webcrypto.CryptoKeyPair;
}

/** Options of {@link createCa}. */
export interface CreateCaOptions {
  /** Trust domain name, validated as SPIFFE-ID §2.1. */
  readonly trustDomain: string;
  /** Lifetime; defaults to 30 days. */
  readonly validityMs?: number;
  /** Issue time; defaults to the current time. */
  readonly now?: Date;
}

/** Options of {@link issueSvid}. */
export interface IssueSvidOptions {
  /** The leaf's SPIFFE ID; must be in the CA's trust domain and have a path. */
  readonly spiffeId: string | SpiffeId;
  /** Lifetime; defaults to 24 h and is capped at the CA's own expiry. */
  readonly validityMs?: number;
  /** Issue time; defaults to the current time. */
  readonly now?: Date;
  /** Extra DNS SANs (X509-SVID §2 allows other SAN types beside the one URI SAN). */
  readonly dnsNames?: readonly string[];
  /** Extra IP address SANs (IPv4 or IPv6 text form), for tools that dial an address. */
  readonly ipAddresses?: readonly string[];
  /**
   * Test-only knobs that produce certificates violating X509-SVID, for negative tests. With
   * `uris`, those strings replace the URI SAN (and `spiffeId` is not checked); `isCa` sets
   * basicConstraints cA; `keyUsage` replaces the key usage bit mask (`x509.KeyUsageFlags`);
   * `omitKeyUsage` leaves the extension out.
   */
  readonly overrides?: {
    readonly uris?: readonly string[];
    readonly isCa?: boolean;
    readonly keyUsage?: number;
    readonly omitKeyUsage?: boolean;
  };
}

/** A leaf X509-SVID and its key. */
export interface IssuedSvid {
  /** The leaf certificate only, PEM, newline-terminated. */
  readonly certPem: string;
  /** The leaf's private key, PKCS#8 PEM, newline-terminated. */
  readonly keyPem: string;
  /** End of validity as encoded in the certificate (whole seconds). */
  readonly notAfter: Date;
  /** The parsed certificate. */
  readonly cert: x509.X509Certificate;
}

function positiveDuration(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be a positive number of milliseconds`);
  return value;
}

function randomSerial(): string {
  // CA/B Forum practice: at least 64 bits of CSPRNG output; the encoder adds a leading zero byte
  // when the top bit is set, keeping the DER INTEGER positive (RFC 5280 §4.1.2.2).
  return randomBytes(16).toString("hex");
}

function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await globalThis.crypto.subtle.generateKey(KEY_ALGORITHM, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return toPem(await globalThis.crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/**
 * Creates a self-signed development CA for `trustDomain` (ECDSA P-256, SHA-256): basicConstraints
 * cA true with pathLen 0 (critical), keyUsage keyCertSign|cRLSign (critical), a subject key
 * identifier and the URI SAN `spiffe://<trustDomain>` (X509-SVID §3.2: a signing certificate's
 * SPIFFE ID has no path and resides in the trust domain it signs for).
 *
 * @throws {SpiffeError} `SPIFFE_ID_INVALID` for an invalid trust domain.
 * @throws {RangeError} for a non-positive validity.
 */
export async function createCa(opts: CreateCaOptions): Promise<DevCa> {
  const trustDomain = parseTrustDomain(opts.trustDomain);
  const validityMs = positiveDuration(
    opts.validityMs ?? DEV_PKI_DEFAULTS.caValidityMs,
    "validityMs",
  );
  const now = opts.now ?? new Date();
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    // Subjects carry no identity in SPIFFE; CAs are told apart by their key identifiers.
    name: "O=SPIFFE, CN=SPIFFE development CA",
    notBefore: new Date(now.getTime() - NOT_BEFORE_BACKDATE_MS),
    notAfter: new Date(now.getTime() + validityMs),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      // X509-SVID §4.1: "Signing certificates MUST set the `cA` field to `true`".
      new x509.BasicConstraintsExtension(true, 0, true),
      // X509-SVID §4.3: key usage "MUST be marked critical"; signing certificates "MUST set
      // `keyCertSign`. They MAY set `cRLSign`."
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: `spiffe://${trustDomain}` }]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return Object.freeze({
    trustDomain,
    certPem: `${cert.toString("pem")}\n`,
    keyPem: await privateKeyPem(keys.privateKey),
    cert,
    keys,
  });
}

/**
 * Issues a leaf X509-SVID signed by `ca` (ECDSA P-256, SHA-256): exactly one URI SAN (plus any
 * `dnsNames`), basicConstraints cA false (critical), keyUsage digitalSignature|keyEncipherment
 * (critical), extKeyUsage serverAuth+clientAuth, a random 128-bit serial, subject `O=SPIFFE`,
 * subject and authority key identifiers. Without `overrides` the result passes
 * `spiffeIdFromCertificate`.
 *
 * @throws {SpiffeError} `SPIFFE_ID_INVALID` when `spiffeId` is invalid, has no path (reason
 *   `leaf-path-missing`) or belongs to another trust domain (reason `trust-domain-mismatch`).
 * @throws {RangeError} for a non-positive validity.
 */
export async function issueSvid(ca: DevCa, opts: IssueSvidOptions): Promise<IssuedSvid> {
  const overrides = opts.overrides ?? {};
  let uris: readonly string[];
  if (overrides.uris !== undefined) {
    uris = overrides.uris;
  } else {
    const id = typeof opts.spiffeId === "string" ? parseSpiffeId(opts.spiffeId) : opts.spiffeId;
    // X509-SVID §3.1: "Leaf certificate SPIFFE IDs MUST have a non-root path component."
    if (id.path === "")
      throw new SpiffeError("SPIFFE_ID_INVALID", "leaf-path-missing", `${id} has no path`);
    if (id.trustDomain !== ca.trustDomain) {
      throw new SpiffeError(
        "SPIFFE_ID_INVALID",
        "trust-domain-mismatch",
        `${id} is not in the CA's trust domain ${ca.trustDomain}`,
      );
    }
    uris = [id.toString()];
  }
  const validityMs = positiveDuration(
    opts.validityMs ?? DEV_PKI_DEFAULTS.svidValidityMs,
    "validityMs",
  );
  const now = opts.now ?? new Date();
  // A leaf is useless once its issuer expires (path validation checks every certificate), so
  // its lifetime is capped at the CA's, as SPIRE does.
  const notAfter = new Date(Math.min(now.getTime() + validityMs, ca.cert.notAfter.getTime()));
  const keys = await generateKeys();
  const caKeyId =
    ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ??
    (await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey)).keyId!;

  const extensions: x509.Extension[] = [
    // X509-SVID §4.1: "leaf certificates MUST set the `cA` field to `false`."
    new x509.BasicConstraintsExtension(overrides.isCa ?? false, undefined, true),
    // X509-SVID §4.4: when present, "fields `id-kp-serverAuth` and `id-kp-clientAuth` MUST be set."
    new x509.ExtendedKeyUsageExtension([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    new x509.AuthorityKeyIdentifierExtension(caKeyId),
  ];
  // X509-SVID §2: "An X.509 SVID MUST contain exactly one URI SAN"; it "MAY contain any number of
  // other SAN field types, including DNS SANs." (An empty SAN extension is invalid DER, RFC 5280
  // §4.2.1.6, so a test certificate without names simply has none.)
  const sans = [
    ...uris.map((value) => ({ type: "url" as const, value })),
    ...(opts.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  if (overrides.omitKeyUsage !== true) {
    // X509-SVID §4.3: key usage "MUST be marked critical"; "Leaf SVIDs MUST set
    // `digitalSignature`. They MAY set `keyEncipherment` and/or `keyAgreement`".
    const usages =
      overrides.keyUsage ??
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment;
    extensions.push(new x509.KeyUsagesExtension(usages, true));
  }

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    // SPIFFE derives identity from the URI SAN only; the subject is informational.
    subject: "O=SPIFFE",
    issuer: ca.cert.subjectName,
    notBefore: new Date(now.getTime() - NOT_BEFORE_BACKDATE_MS),
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  });
  return Object.freeze({
    certPem: `${cert.toString("pem")}\n`,
    keyPem: await privateKeyPem(keys.privateKey),
    notAfter: cert.notAfter,
    cert,
  });
}

/**
 * SANs of a development SVID besides its SPIFFE ID: the service name, `localhost` and the
 * loopback addresses, so generic tools such as grpcurl, which check the host they dial, can
 * talk to the services. X509-SVID §2: an SVID "MAY contain any number of other SAN field types,
 * including DNS SANs"; platform peers ignore them and check the URI SAN only.
 */
function devExtraNames(name: string): { dnsNames: string[]; ipAddresses: string[] } {
  return { dnsNames: [name, "localhost"], ipAddresses: ["127.0.0.1", "::1"] };
}

/** Options of {@link ensureDevPki}; every field but `dir` has a default from {@link DEV_PKI_DEFAULTS}. */
export interface EnsureDevPkiOptions {
  /** Directory of the PKI files; created with mode 0700 when absent. */
  readonly dir: string;
  readonly trustDomain?: string;
  /** Identity names (one SPIFFE path segment each); defaults to {@link DEV_IDENTITIES}. */
  readonly identities?: readonly string[];
  readonly svidValidityMs?: number;
  readonly caValidityMs?: number;
  /** A certificate expiring within this window counts as expired. */
  readonly renewBeforeMs?: number;
  /** Current time; defaults to the real clock. */
  readonly now?: Date;
  /** Regenerate everything regardless of the current state. */
  readonly force?: boolean;
}

/** Paths and SPIFFE ID of one identity's SVID. */
export interface DevPkiIdentityFiles {
  readonly spiffeId: string;
  /** `<dir>/<name>.pem`: the leaf certificate only. */
  readonly certFile: string;
  /** `<dir>/<name>-key.pem`: its PKCS#8 private key, mode 0600. */
  readonly keyFile: string;
}

/** Every file of the development PKI. */
export interface DevPkiFiles {
  readonly dir: string;
  /** `<dir>/bundle.pem`: the trust bundle (the CA certificate). */
  readonly bundleFile: string;
  /** `<dir>/ca-key.pem`: the CA's private key, mode 0600. */
  readonly caKeyFile: string;
  readonly identities: Readonly<Record<string, DevPkiIdentityFiles>>;
}

/** What {@link ensureDevPki} did. */
export interface EnsureDevPkiResult {
  /** True when a new CA was created and every SVID reissued. */
  readonly regenerated: boolean;
  /** Names of the identities whose SVID was (re)issued, in option order. */
  readonly renewed: readonly string[];
  /** Why each action was taken, one human-readable line each; empty when nothing was done. */
  readonly notes: readonly string[];
  readonly files: DevPkiFiles;
}

/**
 * Writes `data` to a temporary file in the same directory, then renames it over `file`, so a
 * reader (such as a service's certificate watcher) sees either the old or the new content.
 */
async function writeAtomic(file: string, data: string, mode: number): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    // "wx" refuses to follow a pre-planted file or symlink at the temporary name.
    await writeFile(temp, data, { mode, flag: "wx" });
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

async function writeSvid(files: DevPkiIdentityFiles, svid: IssuedSvid): Promise<void> {
  // Key first: a watcher that reloads between the two renames sees a mismatching pair, which
  // loadSvidFiles reports as SVID_KEY_MISMATCH, and picks up the pair on the certificate's rename.
  await writeAtomic(files.keyFile, svid.keyPem, 0o600);
  await writeAtomic(files.certFile, svid.certPem, 0o644);
}

function describe(err: unknown): string {
  if (err instanceof SpiffeError) return `${err.reason}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Loads the CA from disk when it is still good; otherwise returns why not. */
async function loadCa(
  files: DevPkiFiles,
  trustDomain: string,
  now: Date,
  renewBeforeMs: number,
): Promise<{ ca: DevCa } | { problem: string }> {
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([
      readFile(files.bundleFile, "utf8"),
      readFile(files.caKeyFile, "utf8"),
    ]);
  } catch (err) {
    return { problem: `CA files unreadable (${describe(err)})` };
  }
  try {
    const blocks = certPem.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
    if (blocks.length !== 1) return { problem: "bundle.pem does not hold exactly one certificate" };
    const cert = new NodeX509Certificate(certPem);
    if (!cert.ca || !cert.checkIssued(cert) || !cert.verify(cert.publicKey)) {
      return { problem: "bundle.pem is not a self-signed CA" };
    }
    if (cert.subjectAltName !== `URI:spiffe://${trustDomain}`) {
      return { problem: `bundle.pem is not the CA of trust domain ${trustDomain}` };
    }
    if (cert.validFromDate.getTime() > now.getTime()) return { problem: "the CA is not yet valid" };
    if (cert.validToDate.getTime() - now.getTime() <= renewBeforeMs)
      return { problem: "the CA expires soon" };
    const privateKey = createPrivateKey(keyPem);
    const certSpki = cert.publicKey.export({ type: "spki", format: "der" });
    if (!createPublicKey(privateKey).export({ type: "spki", format: "der" }).equals(certSpki)) {
      return { problem: "ca-key.pem does not match bundle.pem" };
    }
    const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
    const subtle = globalThis.crypto.subtle;
    const keys: webcrypto.CryptoKeyPair = {
      privateKey: await subtle.importKey("pkcs8", pkcs8, KEY_ALGORITHM, true, ["sign"]),
      publicKey: await subtle.importKey("spki", certSpki, KEY_ALGORITHM, true, ["verify"]),
    };
    return {
      ca: Object.freeze({
        trustDomain,
        certPem,
        keyPem,
        cert: new x509.X509Certificate(certPem),
        keys,
      }),
    };
  } catch (err) {
    return { problem: `CA files unparsable (${describe(err)})` };
  }
}

/** Returns why the identity's SVID must be reissued, or undefined when it is still good. */
async function svidProblem(
  files: DevPkiFiles,
  identity: DevPkiIdentityFiles,
  trustDomain: string,
  now: Date,
  renewBeforeMs: number,
): Promise<string | undefined> {
  try {
    const loaded = await loadSvidFiles({
      certFile: identity.certFile,
      keyFile: identity.keyFile,
      bundleFile: files.bundleFile,
      trustDomain,
      now,
    });
    if (loaded.spiffeId.toString() !== identity.spiffeId)
      return `holds ${loaded.spiffeId}, not ${identity.spiffeId}`;
    if (loaded.notAfter.getTime() - now.getTime() <= renewBeforeMs) return "expires soon";
    return undefined;
  } catch (err) {
    return describe(err);
  }
}

function planFiles(dir: string, trustDomain: string, identities: readonly string[]): DevPkiFiles {
  const byName: Record<string, DevPkiIdentityFiles> = {};
  for (const name of identities) {
    // "bundle" and "ca" would overwrite bundle.pem or ca-key.pem.
    if (name === "bundle" || name === "ca")
      throw new RangeError(`identity name "${name}" is reserved`);
    if (Object.hasOwn(byName, name)) throw new RangeError(`identity "${name}" is listed twice`);
    byName[name] = Object.freeze({
      spiffeId: spiffeIdForService(trustDomain, name).toString(),
      certFile: join(dir, `${name}.pem`),
      keyFile: join(dir, `${name}-key.pem`),
    });
  }
  return Object.freeze({
    dir,
    bundleFile: join(dir, "bundle.pem"),
    caKeyFile: join(dir, "ca-key.pem"),
    identities: Object.freeze(byName),
  });
}

/**
 * Makes `dir` hold a usable development PKI and returns what it did. Idempotent: when everything
 * is present and good it writes nothing.
 *
 * Files: `bundle.pem` (the CA certificate), `ca-key.pem`, and per identity `<name>.pem` (the leaf
 * only) and `<name>-key.pem`, with SPIFFE ID `spiffe://<trustDomain>/ns/auth/sa/<name>`. Keys are
 * written with mode 0600, certificates 0644, and the directory is created with mode 0700.
 *
 * Everything is regenerated when `force` is set or the CA is unusable: a CA file absent or
 * unparsable, not a self-signed CA, for another trust domain, not yet valid, expiring within
 * `renewBeforeMs`, or with a key that does not match. With a good CA, only the SVIDs that are
 * absent, unparsable, not signed by the CA, for the wrong SPIFFE ID, with a mismatching key or
 * expiring within `renewBeforeMs` are reissued, so running services keep their trust bundle.
 * Each file is replaced atomically (temporary file, then rename); the bundle is written last.
 * Not safe against two concurrent calls on the same directory.
 *
 * @throws {SpiffeError} `SPIFFE_ID_INVALID` for an invalid trust domain or identity name.
 * @throws {RangeError} for reserved or duplicate identity names or invalid durations.
 */
export async function ensureDevPki(opts: EnsureDevPkiOptions): Promise<EnsureDevPkiResult> {
  const trustDomain = parseTrustDomain(opts.trustDomain ?? DEV_PKI_DEFAULTS.trustDomain);
  const svidValidityMs = positiveDuration(
    opts.svidValidityMs ?? DEV_PKI_DEFAULTS.svidValidityMs,
    "svidValidityMs",
  );
  const caValidityMs = positiveDuration(
    opts.caValidityMs ?? DEV_PKI_DEFAULTS.caValidityMs,
    "caValidityMs",
  );
  const renewBeforeMs = opts.renewBeforeMs ?? DEV_PKI_DEFAULTS.renewBeforeMs;
  if (!Number.isFinite(renewBeforeMs) || renewBeforeMs < 0 || renewBeforeMs >= svidValidityMs) {
    // Otherwise every fresh SVID would already count as expiring and be reissued on every call.
    throw new RangeError("renewBeforeMs must be at least 0 and less than svidValidityMs");
  }
  const now = opts.now ?? new Date();
  const files = planFiles(opts.dir, trustDomain, opts.identities ?? DEV_IDENTITIES);
  const names = Object.keys(files.identities);

  await mkdir(opts.dir, { recursive: true, mode: 0o700 });

  const loaded =
    opts.force === true
      ? { problem: "forced" }
      : await loadCa(files, trustDomain, now, renewBeforeMs);
  if ("ca" in loaded) {
    const problems = await Promise.all(
      names.map((name) =>
        svidProblem(files, files.identities[name]!, trustDomain, now, renewBeforeMs),
      ),
    );
    const renewed: string[] = [];
    const notes: string[] = [];
    names.forEach((name, i) => {
      if (problems[i] === undefined) return;
      renewed.push(name);
      notes.push(`renewed ${name}: ${problems[i]}`);
    });
    const issued = await Promise.all(
      renewed.map((name) =>
        issueSvid(loaded.ca, {
          spiffeId: files.identities[name]!.spiffeId,
          validityMs: svidValidityMs,
          now,
          ...devExtraNames(name),
        }),
      ),
    );
    await Promise.all(renewed.map((name, i) => writeSvid(files.identities[name]!, issued[i]!)));
    return Object.freeze({ regenerated: false, renewed, notes, files });
  }

  const ca = await createCa({ trustDomain, validityMs: caValidityMs, now });
  const issued = await Promise.all(
    names.map((name) =>
      issueSvid(ca, {
        spiffeId: files.identities[name]!.spiffeId,
        validityMs: svidValidityMs,
        now,
        ...devExtraNames(name),
      }),
    ),
  );
  await Promise.all(names.map((name, i) => writeSvid(files.identities[name]!, issued[i]!)));
  await writeAtomic(files.caKeyFile, ca.keyPem, 0o600);
  // Last, so every SVID on disk already chains to the bundle once the bundle changes.
  await writeAtomic(files.bundleFile, ca.certPem, 0o644);
  return Object.freeze({
    regenerated: true,
    renewed: names,
    notes: [`regenerated everything: ${loaded.problem}`],
    files,
  });
}
