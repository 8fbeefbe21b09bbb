import { SpiffeError } from "./spiffe-error.ts";
import { parseSpiffeId, SpiffeId } from "./spiffe-id.ts";

// gRPC over HTTP/2: ":path" is "/" Service-Name "/" {method name}, with a fully qualified
// protobuf service name.
const RPC_PATH = /^\/[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\/[A-Za-z_][A-Za-z0-9_]*$/;

/** Callers allowed per RPC: full gRPC method path → exact caller SPIFFE IDs. */
export type CallerAllowlistConfig = Readonly<Record<string, readonly string[]>>;

/**
 * Which callers may invoke which RPC. An allowlist, never a denylist: an RPC absent from the
 * configuration allows nobody, an unauthenticated caller is never allowed, and a caller matches
 * only by exact, case-sensitive comparison of its canonical SPIFFE ID (no prefixes, patterns or
 * trust-domain wildcards).
 *
 * The configuration is validated completely at construction, so a typo fails start-up instead of
 * silently denying (or allowing) at run time.
 */
export class CallerAllowlist {
  readonly #callers: ReadonlyMap<string, ReadonlySet<string>>;

  /**
   * @param config - e.g. `{ "/auth.token.v1.TokenService/IssueTokenPair": ["spiffe://auth.local/ns/auth/sa/session-identity"] }`.
   *   An empty list is allowed and means nobody may call that RPC.
   * @throws {SpiffeError} `ALLOWLIST_INVALID` (reason `config-shape` or `rpc-path`) when the
   *   configuration is not an object of string arrays or a key is not a `/package.Service/Method`
   *   path; `SPIFFE_ID_INVALID` when an entry is not a valid SPIFFE ID (the parser's reason) or has
   *   no path (reason `leaf-path-missing`: no leaf SVID can carry it, X509-SVID §5.2). The message
   *   names the RPC and the entry's index.
   */
  constructor(config: CallerAllowlistConfig) {
    if (typeof config !== "object" || config === null || Array.isArray(config)) {
      throw new SpiffeError(
        "ALLOWLIST_INVALID",
        "config-shape",
        "the caller allowlist must be an object",
      );
    }
    const callers = new Map<string, ReadonlySet<string>>();
    for (const [rpcPath, ids] of Object.entries(config)) {
      if (!RPC_PATH.test(rpcPath)) {
        throw new SpiffeError(
          "ALLOWLIST_INVALID",
          "rpc-path",
          `allowlist key ${JSON.stringify(rpcPath)} is not a /package.Service/Method path`,
        );
      }
      if (!Array.isArray(ids)) {
        throw new SpiffeError(
          "ALLOWLIST_INVALID",
          "config-shape",
          `allowlist entry for ${rpcPath} must be an array of SPIFFE IDs`,
        );
      }
      const allowed = new Set<string>();
      ids.forEach((raw: unknown, index) => {
        let id: SpiffeId;
        try {
          id = parseSpiffeId(raw as string);
        } catch (err) {
          if (!(err instanceof SpiffeError)) throw err;
          throw new SpiffeError(
            err.code,
            err.reason,
            `allowlist ${rpcPath}[${index}]: ${err.message}`,
            { cause: err },
          );
        }
        // X509-SVID §5.2: leaf SPIFFE IDs have a non-root path, so a bare trust domain could never
        // match a caller; it is almost certainly a mistaken attempt at a wildcard.
        if (id.path === "") {
          throw new SpiffeError(
            "SPIFFE_ID_INVALID",
            "leaf-path-missing",
            `allowlist ${rpcPath}[${index}]: ${id} has no path and can never match a caller`,
          );
        }
        allowed.add(id.toString());
      });
      callers.set(rpcPath, allowed);
    }
    this.#callers = callers;
  }

  /**
   * True only when `rpcPath` is configured and `callerId` is one of its SPIFFE IDs, compared
   * exactly. Returns false for an unknown RPC, an absent caller or anything that is not a
   * validated {@link SpiffeId}.
   */
  isAllowed(rpcPath: string, callerId: SpiffeId | undefined): boolean {
    if (!(callerId instanceof SpiffeId)) return false;
    return this.#callers.get(rpcPath)?.has(callerId.toString()) ?? false;
  }

  /** The configured RPC paths, so a server can check at start-up that each method it serves has an entry. */
  rpcPaths(): readonly string[] {
    return [...this.#callers.keys()];
  }
}
