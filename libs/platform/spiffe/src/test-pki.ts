import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, DEV_IDENTITIES, ensureDevPki, issueSvid } from "./dev-pki.ts";

/** The files of one workload's SVID, in the shape `@authplat/rpc` takes them. */
export interface SvidFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly bundleFile: string;
  readonly trustDomain: string;
}

/**
 * The workload names every test PKI issues SVIDs for: the platform's identities plus
 * `outsider`, a workload of the trust domain that no allowlist names.
 */
export const TEST_IDENTITIES: readonly string[] = Object.freeze([...DEV_IDENTITIES, "outsider"]);

/** A throwaway PKI in a temporary directory, for tests only. */
export interface TestPki {
  /** The directory holding `bundle.pem`, `<name>.pem` and `<name>-key.pem`. */
  readonly dir: string;
  readonly trustDomain: string;
  /** SVID file paths of one identity, ready for `startRpcServer` or `createRpcClient`. */
  files(name: string): SvidFiles;
  /** SPIFFE ID string of one identity. */
  idOf(name: string): string;
  /**
   * Files of a workload whose SVID (same SPIFFE ID as `name`) is signed by a foreign CA; its
   * own bundle trusts that foreign CA, so only the other side's check can refuse it.
   */
  foreign(name: string): Promise<SvidFiles>;
  /** Deletes the directory. */
  cleanup(): Promise<void>;
}

/** Creates a throwaway PKI for trust domain `auth.local` (or the one given). */
export async function createTestPki(trustDomain = "auth.local"): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), "authplat-pki-"));
  await ensureDevPki({
    dir,
    trustDomain,
    identities: [...TEST_IDENTITIES],
    svidValidityMs: 60 * 60 * 1000,
    caValidityMs: 24 * 60 * 60 * 1000,
    renewBeforeMs: 60 * 1000,
  });
  const idOf = (name: string) => `spiffe://${trustDomain}/ns/auth/sa/${name}`;
  const files = (name: string): SvidFiles => ({
    certFile: join(dir, `${name}.pem`),
    keyFile: join(dir, `${name}-key.pem`),
    bundleFile: join(dir, "bundle.pem"),
    trustDomain,
  });
  return {
    dir,
    trustDomain,
    idOf,
    files,
    async foreign(name) {
      const ca = await createCa({ trustDomain, validityMs: 60 * 60 * 1000 });
      const svid = await issueSvid(ca, { spiffeId: idOf(name), validityMs: 60 * 60 * 1000 });
      const prefix = join(dir, `foreign-${name}`);
      await writeFile(`${prefix}.pem`, svid.certPem, { mode: 0o600 });
      await writeFile(`${prefix}-key.pem`, svid.keyPem, { mode: 0o600 });
      await writeFile(`${prefix}-bundle.pem`, ca.certPem, { mode: 0o600 });
      return {
        certFile: `${prefix}.pem`,
        keyFile: `${prefix}-key.pem`,
        bundleFile: `${prefix}-bundle.pem`,
        trustDomain,
      };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
