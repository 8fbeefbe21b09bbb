// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API
// installed before the library module is evaluated.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { Buffer } from "node:buffer";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  X509Certificate as NodeX509Certificate,
} from "node:crypto";
import { readFile } from "node:fs/promises";
import { SpiffeError, type SpiffeErrorCode } from "./spiffe-error.ts";
import { parseSpiffeId, parseTrustDomain, type SpiffeId } from "./spiffe-id.ts";

const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const OID_BASIC_CONSTRAINTS = "2.5.29.19";
const OID_KEY_USAGE = "2.5.29.15";

/** Size bound of the fingerprint cache; the least recently used entry is evicted first. */
const CACHE_MAX_ENTRIES = 1024;

type Inspection =
  | { readonly ok: true; readonly id: SpiffeId }
  | {
      readonly ok: false;
      readonly code: SpiffeErrorCode;
      readonly reason: string;
      readonly message: string;
    };

// Keyed by the SHA-256 of the whole DER, so a cached entry is only ever reused for the identical
// certificate; the trust-domain comparison is not cached because it depends on the caller.
const inspections = new Map<string, Inspection>();

function reject(reason: string, message: string): Inspection {
  return { ok: false, code: "SVID_INVALID", reason, message };
}

/** Every check of a leaf X509-SVID that depends only on the certificate bytes. */
function inspect(der: Uint8Array): Inspection {
  let extensions: readonly x509.Extension[];
  try {
    // `extensions` is parsed lazily; reading it here surfaces malformed extensions (including
    // GeneralName forms the library cannot represent) as a parse failure.
    extensions = new x509.X509Certificate(der).extensions;
  } catch {
    return reject(
      "certificate-unparsable",
      "the certificate is not a parsable DER X.509 certificate",
    );
  }

  const seen = new Set<string>();
  for (const ext of extensions) {
    // RFC 5280 §4.2: "A certificate MUST NOT include more than one instance of a particular
    // extension." Otherwise two parsers could disagree on which SAN or key usage is meant.
    if (seen.has(ext.type))
      return reject("duplicate-extension", `the certificate repeats extension ${ext.type}`);
    seen.add(ext.type);
  }
  const find = (oid: string) => extensions.find((ext) => ext.type === oid);

  const san = find(OID_SUBJECT_ALT_NAME);
  const uris =
    san instanceof x509.SubjectAlternativeNameExtension
      ? san.names.items.filter((n) => n.type === "url")
      : [];
  // X509-SVID §2: "An X.509 SVID MUST contain exactly one URI SAN" and "Validators encountering an
  // SVID containing more than one URI SAN MUST reject the SVID."
  if (uris.length === 0)
    return reject("uri-san-missing", "X509-SVID §2: the certificate has no URI SAN");
  if (uris.length > 1) {
    return reject(
      "uri-san-multiple",
      `X509-SVID §2: the certificate has ${uris.length} URI SANs; exactly one is allowed`,
    );
  }
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uris[0]!.value);
  } catch (err) {
    const detail = err instanceof SpiffeError ? `${err.reason}: ${err.message}` : String(err);
    return reject(
      "uri-san-not-spiffe-id",
      `X509-SVID §2: the URI SAN is not a valid SPIFFE ID (${detail})`,
    );
  }
  // X509-SVID §5.2: the validator "MUST ensure that the SPIFFE ID has a non-root path component".
  if (id.path === "") {
    return reject("leaf-path-missing", "X509-SVID §5.2: a leaf SVID's SPIFFE ID must have a path");
  }

  // X509-SVID §5.2: the validator "MUST ensure that the `CA` field in the basic constraints
  // extension is set to `false`" (an absent extension means cA is false by default).
  const basicConstraints = find(OID_BASIC_CONSTRAINTS);
  if (basicConstraints !== undefined) {
    if (!(basicConstraints instanceof x509.BasicConstraintsExtension)) {
      return reject("certificate-unparsable", "the basic constraints extension is malformed");
    }
    if (basicConstraints.ca)
      return reject("leaf-is-ca", "X509-SVID §4.1: a leaf SVID must have cA set to false");
  }

  // X509-SVID §4.3: "The key usage extension MUST be set on all SVIDs".
  const keyUsage = find(OID_KEY_USAGE);
  if (keyUsage === undefined)
    return reject("key-usage-missing", "X509-SVID §4.3: the key usage extension is missing");
  if (!(keyUsage instanceof x509.KeyUsagesExtension)) {
    return reject("certificate-unparsable", "the key usage extension is malformed");
  }
  // X509-SVID §5.2: the validator MUST ensure "that `keyCertSign` and `cRLSign` are not set".
  if ((keyUsage.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) {
    return reject(
      "key-usage-ca",
      "X509-SVID §5.2: a leaf SVID must not set keyCertSign or cRLSign",
    );
  }
  // X509-SVID §4.3: "Leaf SVIDs MUST set `digitalSignature`."
  if ((keyUsage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    return reject(
      "key-usage-digital-signature",
      "X509-SVID §4.3: a leaf SVID must set digitalSignature",
    );
  }
  return { ok: true, id };
}

/**
 * Extracts the caller's SPIFFE ID from a leaf X509-SVID (DER, e.g. `getPeerCertificate().raw`).
 *
 * Checks, in order: the certificate parses and repeats no extension (RFC 5280 §4.2); it has
 * exactly one URI SAN (X509-SVID §2) that is a valid SPIFFE ID with a non-root path (§5.2); it is
 * not a CA (§4.1); its key usage is present, sets digitalSignature and neither keyCertSign nor
 * cRLSign (§4.3, §5.2); its trust domain equals `opts.trustDomain`. It does NOT verify the
 * signature chain or validity period: call it only on a certificate the TLS stack has already
 * verified against the trust bundle (X509-SVID §5.1).
 *
 * Results are cached by the SHA-256 of the DER (at most 1024 certificates, least recently used
 * evicted); the cache is keyed on the exact bytes, so it never changes the outcome.
 *
 * @throws {SpiffeError} `SPIFFE_ID_INVALID` when `opts.trustDomain` is not a valid trust domain;
 *   `SVID_INVALID` with reason `certificate-unparsable`, `duplicate-extension`,
 *   `uri-san-missing`, `uri-san-multiple`, `uri-san-not-spiffe-id`, `leaf-path-missing`,
 *   `leaf-is-ca`, `key-usage-missing`, `key-usage-ca` or `key-usage-digital-signature`;
 *   `SVID_UNTRUSTED` with reason `trust-domain-mismatch`.
 */
export function spiffeIdFromCertificate(
  der: Uint8Array,
  opts: { readonly trustDomain: string },
): SpiffeId {
  const trustDomain = parseTrustDomain(opts.trustDomain);
  const fingerprint = createHash("sha256").update(der).digest("base64");
  let inspection = inspections.get(fingerprint);
  if (inspection === undefined) {
    inspection = inspect(der);
    if (inspections.size >= CACHE_MAX_ENTRIES) {
      const oldest = inspections.keys().next();
      if (oldest.done !== true) inspections.delete(oldest.value);
    }
  } else {
    // Re-insert so Map order tracks recency of use.
    inspections.delete(fingerprint);
  }
  inspections.set(fingerprint, inspection);

  if (!inspection.ok) throw new SpiffeError(inspection.code, inspection.reason, inspection.message);
  if (inspection.id.trustDomain !== trustDomain) {
    throw new SpiffeError(
      "SVID_UNTRUSTED",
      "trust-domain-mismatch",
      `the SVID's trust domain "${inspection.id.trustDomain}" is not the expected "${trustDomain}"`,
    );
  }
  return inspection.id;
}

/** Number of certificates currently cached by {@link spiffeIdFromCertificate}. @internal */
export function svidCacheSize(): number {
  return inspections.size;
}

/** Options of {@link loadSvidFiles}. */
export interface LoadSvidFilesOptions {
  /** PEM file: the leaf SVID first, then any intermediates. */
  readonly certFile: string;
  /** PEM file: the leaf's private key (PKCS#8, SEC1 or any form Node's `createPrivateKey` reads). */
  readonly keyFile: string;
  /** PEM file: the trust bundle, one or more CA certificates. */
  readonly bundleFile: string;
  /** Trust domain the SVID must belong to. */
  readonly trustDomain: string;
  /** Instant at which the certificates must be valid; defaults to the current time. */
  readonly now?: Date;
}

/** The validated contents of an SVID's files, ready to hand to a TLS stack. */
export interface LoadedSvid {
  /** The certificate file's certificates (leaf first), re-encoded as canonical PEM. */
  readonly certChainPem: string;
  /** The private key as read from the key file. */
  readonly keyPem: string;
  /** The bundle's CA certificates as PEM. */
  readonly bundlePem: string;
  /** SPIFFE ID of the leaf. */
  readonly spiffeId: SpiffeId;
  /** End of the leaf's validity; rotate before it. */
  readonly notAfter: Date;
}

const PEM_CERTIFICATE =
  /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

function pemCertificates(pem: string): Uint8Array[] {
  return [...pem.matchAll(PEM_CERTIFICATE)].map(
    (m) => new Uint8Array(Buffer.from(m[1]!.replace(/\s+/g, ""), "base64")),
  );
}

function toPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  return `-----BEGIN CERTIFICATE-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    throw new SpiffeError(
      "SVID_FILE_UNREADABLE",
      "file-unreadable",
      `cannot read the ${what} file ${file}`,
      {
        cause: err,
      },
    );
  }
}

function parseNodeCertificate(
  der: Uint8Array,
  reason: string,
  message: string,
): NodeX509Certificate {
  try {
    return new NodeX509Certificate(der);
  } catch (err) {
    throw new SpiffeError("SVID_INVALID", reason, message, { cause: err });
  }
}

function signedBy(child: NodeX509Certificate, issuer: NodeX509Certificate): boolean {
  return issuer.ca && child.checkIssued(issuer) && child.verify(issuer.publicKey);
}

/**
 * Reads and cross-checks the three files of a workload's X509-SVID, failing fast at start-up or
 * on rotation rather than at the first handshake.
 *
 * Checks: each file is readable; the certificate file holds at least one certificate and its
 * first one is a leaf X509-SVID of `trustDomain` (as {@link spiffeIdFromCertificate}); the key
 * parses and its public key (SPKI) equals the leaf's; each certificate of the file is signed by
 * the next, and the last by a CA of the bundle; the leaf and its chain are valid at `now`.
 *
 * @throws {SpiffeError} `SVID_FILE_UNREADABLE` (reason `file-unreadable`); `SVID_INVALID`
 *   (reasons `cert-pem`, `bundle-pem`, `key-pem`, or any reason of spiffeIdFromCertificate);
 *   `SVID_UNTRUSTED` (reasons `trust-domain-mismatch`, `chain-untrusted`, `expired`,
 *   `not-yet-valid`); `SVID_KEY_MISMATCH` (reason `key-mismatch`). Every message names the file.
 */
export async function loadSvidFiles(opts: LoadSvidFilesOptions): Promise<LoadedSvid> {
  const { certFile, keyFile, bundleFile } = opts;
  const now = opts.now ?? new Date();
  // Read all three at once, but report the first unreadable file in a fixed order
  // (certificate, key, bundle), so that the error does not depend on which read lost a race.
  const reads = await Promise.allSettled([
    readText(certFile, "certificate"),
    readText(keyFile, "key"),
    readText(bundleFile, "bundle"),
  ]);
  const [certText, keyPem, bundleText] = reads.map((r) => {
    if (r.status === "rejected") throw r.reason;
    return r.value;
  }) as [string, string, string];

  const chainDer = pemCertificates(certText);
  if (chainDer.length === 0)
    throw new SpiffeError("SVID_INVALID", "cert-pem", `${certFile} holds no PEM certificate`);
  const chain = chainDer.map((der) =>
    parseNodeCertificate(der, "cert-pem", `${certFile} holds a certificate that does not parse`),
  );
  const bundleDer = pemCertificates(bundleText);
  if (bundleDer.length === 0) {
    throw new SpiffeError("SVID_INVALID", "bundle-pem", `${bundleFile} holds no PEM certificate`);
  }
  const bundle = bundleDer.map((der) =>
    parseNodeCertificate(
      der,
      "bundle-pem",
      `${bundleFile} holds a certificate that does not parse`,
    ),
  );

  let spiffeId: SpiffeId;
  try {
    spiffeId = spiffeIdFromCertificate(chainDer[0]!, { trustDomain: opts.trustDomain });
  } catch (err) {
    if (!(err instanceof SpiffeError)) throw err;
    throw new SpiffeError(err.code, err.reason, `${certFile}: ${err.message}`, { cause: err });
  }
  const leaf = chain[0]!;

  let keySpki: Buffer;
  try {
    keySpki = createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
  } catch (err) {
    throw new SpiffeError(
      "SVID_INVALID",
      "key-pem",
      `${keyFile} does not hold a parsable private key`,
      { cause: err },
    );
  }
  const certSpki = leaf.publicKey.export({ type: "spki", format: "der" });
  if (!keySpki.equals(certSpki)) {
    throw new SpiffeError(
      "SVID_KEY_MISMATCH",
      "key-mismatch",
      `${keyFile} is not the private key of ${certFile}`,
    );
  }

  // X509-SVID §5.1: trust "is based on standard X.509 path validation". The TLS stack does the
  // full validation per handshake; this catches a certificate from another CA before serving.
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!signedBy(chain[i]!, chain[i + 1]!)) {
      throw new SpiffeError(
        "SVID_UNTRUSTED",
        "chain-untrusted",
        `${certFile}: certificate ${i} is not signed by certificate ${i + 1}`,
      );
    }
  }
  const top = chain[chain.length - 1]!;
  const anchor = bundle.find((ca) => signedBy(top, ca));
  if (anchor === undefined) {
    throw new SpiffeError(
      "SVID_UNTRUSTED",
      "chain-untrusted",
      `${certFile} is not signed by a CA of ${bundleFile}`,
    );
  }
  for (const cert of [...chain, anchor]) {
    if (cert.validToDate.getTime() < now.getTime()) {
      throw new SpiffeError(
        "SVID_UNTRUSTED",
        "expired",
        `${certFile}: a certificate of the chain expired at ${cert.validTo}`,
      );
    }
    if (cert.validFromDate.getTime() > now.getTime()) {
      throw new SpiffeError(
        "SVID_UNTRUSTED",
        "not-yet-valid",
        `${certFile}: a certificate of the chain is valid only from ${cert.validFrom}`,
      );
    }
  }

  return {
    certChainPem: chainDer.map(toPem).join(""),
    keyPem,
    bundlePem: bundleDer.map(toPem).join(""),
    spiffeId,
    notAfter: leaf.validToDate,
  };
}
