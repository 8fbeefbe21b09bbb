import { durationMs } from "@bufbuild/protobuf/wkt";
import type { TokenService } from "@authplat/contracts/auth/token/v1";
import type { RpcClient } from "@authplat/rpc";
import type { FetchedKeySet } from "./jwks/jwks-cache.ts";

/**
 * A key source reading the JWKS from the token service over mTLS. Handlers translate
 * protobuf to domain types; this is that translation for the JWKS, including its `max_age`
 * (absent when the token service sends none).
 */
export function fetchJwksFrom(
  client: Pick<RpcClient<typeof TokenService>, "getJwks">,
): () => Promise<FetchedKeySet> {
  return async () => {
    const response = await client.getJwks({});
    return {
      keys: response.keys.map((key) => ({
        kty: key.kty,
        kid: key.kid,
        use: key.use,
        alg: key.alg,
        crv: key.crv,
        x: key.x,
        ...(key.y === "" ? {} : { y: key.y }),
      })),
      maxAgeMs: response.maxAge === undefined ? undefined : durationMs(response.maxAge),
    };
  };
}
