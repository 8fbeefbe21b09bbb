/**
 * Stable codes for every failure this package reports. The RPC layer maps each one to its own
 * error model; the codes never change meaning once released.
 *
 * - `SPIFFE_ID_INVALID`: a string is not a SPIFFE ID (or trust domain name) under SPIFFE-ID §2.
 * - `SVID_INVALID`: a certificate is not a valid leaf X509-SVID (parse failure, URI SAN count,
 *   CA flags, key usage, or a URI SAN that is not a leaf SPIFFE ID).
 * - `SVID_UNTRUSTED`: a well-formed SVID that must not be trusted here: another trust domain,
 *   a chain that does not lead to the bundle, or outside its validity period.
 * - `SVID_KEY_MISMATCH`: a private key file does not belong to the certificate next to it
 *   (also seen transiently while a rotation is writing the pair).
 * - `SVID_FILE_UNREADABLE`: a certificate, key or bundle file cannot be read.
 * - `ALLOWLIST_INVALID`: a caller allowlist is malformed (for example a bad RPC path).
 */
export type SpiffeErrorCode =
  | "SPIFFE_ID_INVALID"
  | "SVID_INVALID"
  | "SVID_UNTRUSTED"
  | "SVID_KEY_MISMATCH"
  | "SVID_FILE_UNREADABLE"
  | "ALLOWLIST_INVALID";

/**
 * The only error type this package throws for invalid input.
 *
 * `code` is stable and meant for mapping; `reason` is a stable kebab-case name of the rule that
 * failed (for logs and tests, e.g. `"path-dot-segment"`); `message` is a human sentence that may
 * name files or configuration entries and is therefore for logs, not for remote clients.
 */
export class SpiffeError extends Error {
  override readonly name = "SpiffeError";
  /** Stable failure class. */
  readonly code: SpiffeErrorCode;
  /** Stable name of the rule that failed. */
  readonly reason: string;

  /**
   * @param code - stable failure class
   * @param reason - stable name of the rule that failed
   * @param message - human-readable detail for logs
   * @param options - standard `cause` chaining
   */
  constructor(code: SpiffeErrorCode, reason: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.reason = reason;
  }
}
