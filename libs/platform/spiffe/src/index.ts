/**
 * `@authplat/spiffe`: SPIFFE IDs (SPIFFE-ID §2), leaf X509-SVID validation (X509-SVID §2-§5),
 * SVID file loading and per-RPC caller allowlists. The development PKI lives at the
 * `@authplat/spiffe/dev-pki` entry point so production code never loads it by accident.
 */
export { SpiffeError, type SpiffeErrorCode } from "./spiffe-error.ts";
export {
  isMemberOf,
  parseSpiffeId,
  parseTrustDomain,
  SpiffeId,
  spiffeIdForService,
} from "./spiffe-id.ts";
export {
  loadSvidFiles,
  spiffeIdFromCertificate,
  type LoadedSvid,
  type LoadSvidFilesOptions,
} from "./svid.ts";
export { CallerAllowlist, type CallerAllowlistConfig } from "./allowlist.ts";
