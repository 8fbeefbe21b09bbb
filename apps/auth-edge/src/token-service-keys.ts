import type { TokenService } from "@authplat/contracts/auth/token/v1";
import type { RpcClient } from "@authplat/rpc";
import type { SourceJwk } from "./jwks/jwks-cache.ts";

/**
 * A key source reading the JWKS from the token service over mTLS. Handlers translate
 * protobuf to domain types; this is that translation for the JWKS.
 */
export function fetchJwksFrom(client: RpcClient<typeof TokenService>): () => Promise<SourceJwk[]> {
  return async () => {
    const response = await client.getJwks({});
    return response.keys.map((key) => ({
      kty: key.kty,
      kid: key.kid,
      use: key.use,
      alg: key.alg,
      crv: key.crv,
      x: key.x,
      ...(key.y === "" ? {} : { y: key.y }),
    }));
  };
}
