import * as grpc from "@grpc/grpc-js";
import { loadSvidFiles, spiffeIdFromCertificate, type SpiffeId } from "@authplat/spiffe";
import type { PeerCertificate } from "node:tls";

/** Where a workload's X509-SVID and its trust bundle live on disk. */
export interface SvidFiles {
  /** PEM certificate (chain) of this workload's X509-SVID. */
  readonly certFile: string;
  /** PEM PKCS#8 private key of the SVID. */
  readonly keyFile: string;
  /** PEM trust bundle: the CA certificates of the trust domain. */
  readonly bundleFile: string;
  /** Trust domain every peer must belong to, e.g. `auth.local`. */
  readonly trustDomain: string;
  /** How often the files are re-read so rotated SVIDs are picked up; default 5 s. */
  readonly refreshIntervalMs?: number;
}

/** Credentials plus the identity they present. */
export interface WorkloadCredentials<C> {
  readonly credentials: C;
  /** The SPIFFE ID in this workload's own certificate. */
  readonly spiffeId: SpiffeId;
}

function provider(files: SvidFiles): grpc.experimental.FileWatcherCertificateProvider {
  return new grpc.experimental.FileWatcherCertificateProvider({
    certificateFile: files.certFile,
    privateKeyFile: files.keyFile,
    caCertificateFile: files.bundleFile,
    refreshIntervalMs: files.refreshIntervalMs ?? 5_000,
  });
}

/**
 * Server credentials that require a client certificate chaining to the trust bundle (SPIFFE
 * X509-SVID §5: peers are authenticated by their SVID). The files are validated once here so
 * a bad path or a mismatched key fails start-up with a clear message, then watched so a
 * rotated SVID is served without a restart.
 */
export async function serverCredentials(
  files: SvidFiles,
): Promise<WorkloadCredentials<grpc.ServerCredentials>> {
  const svid = await loadSvidFiles(files);
  const watcher = provider(files);
  const credentials = grpc.experimental.createCertificateProviderServerCredentials(
    watcher,
    watcher,
    true,
  );
  return { credentials, spiffeId: svid.spiffeId };
}

/**
 * Channel credentials for calling a service that must present `expectedServerId`. The usual
 * DNS host name check is replaced by an exact SPIFFE ID match, because SVIDs name workloads by
 * URI SAN, not by host (SPIFFE X509-SVID §5.2).
 */
export async function clientCredentials(
  files: SvidFiles,
  expectedServerId: SpiffeId,
): Promise<WorkloadCredentials<grpc.ChannelCredentials>> {
  const svid = await loadSvidFiles(files);
  const watcher = provider(files);
  const expected = expectedServerId.toString();
  const credentials = grpc.experimental.createCertificateProviderChannelCredentials(
    watcher,
    watcher,
    {
      checkServerIdentity: (_host: string, certificate: PeerCertificate) => {
        try {
          const actual = spiffeIdFromCertificate(certificate.raw, {
            trustDomain: files.trustDomain,
          }).toString();
          return actual === expected
            ? undefined
            : new Error(`server presented ${actual}, expected ${expected}`);
        } catch (error) {
          return new Error(`server certificate is not a valid SVID: ${String(error)}`);
        }
      },
    },
  );
  return { credentials, spiffeId: svid.spiffeId };
}
