import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { TokenService } from "@authplat/contracts/auth/token/v1";
import type { RpcClient } from "@authplat/rpc";
import type { OpenRevocationFeed } from "./revocation/revocation-feed.ts";

/**
 * Opens the token service's WatchRevocations feed over mTLS, asking for a heartbeat every
 * `heartbeatMs`, and translates its messages into the edge's terms (each `token_id` a `jti`
 * entry). The call has no deadline of its own: it lives as long as the stream does.
 */
export function openRevocationFeedFrom(
  client: Pick<RpcClient<typeof TokenService>, "watchRevocations">,
  heartbeatMs: number,
): OpenRevocationFeed {
  return async function* (cursor, signal) {
    const stream = client.watchRevocations(
      { cursor, heartbeatInterval: durationFromMs(heartbeatMs) },
      { timeoutMs: Infinity, signal },
    );
    for await (const message of stream) {
      yield {
        snapshot: message.snapshot,
        cursor: message.cursor,
        entries: message.revoked.map((revoked) => ({
          kind: "jti" as const,
          value: revoked.tokenId,
          // A missing expiry cannot be bounded: keep the entry as long as any token lives.
          expiresAtMs:
            revoked.expiresAt === undefined
              ? Number.MAX_SAFE_INTEGER
              : timestampMs(revoked.expiresAt),
        })),
      };
    }
  };
}
