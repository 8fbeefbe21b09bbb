/**
 * The baseline of `bench/token.bench.ts`: node-oidc-provider serving the client_credentials and
 * refresh_token grants with ES256 JWT access tokens, on plain HTTP/1.1 on loopback, in its own
 * process (as the token service runs in its own). Prints `{"port": n}` once listening.
 *
 * `POST /bench/refresh-token` mints a refresh token of a fresh grant through the provider's own
 * models, standing in for an authorization-code flow (which needs a browser interaction) so
 * the refresh_token grant can be measured.
 *
 * @module
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import Provider from "oidc-provider";

const RESOURCE = "https://api.auth.local";
const SCOPE = "orders:read profile";
const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const jwk = { ...privateKey.export({ format: "jwk" }), alg: "ES256", use: "sig", kid: "bench" };

const provider = new Provider("http://127.0.0.1", {
  clients: [
    {
      client_id: "bench",
      client_secret: "bench-secret-bench-secret-bench-secret",
      grant_types: ["client_credentials", "refresh_token", "authorization_code"],
      redirect_uris: ["https://client.example/cb"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "ES256",
    },
  ],
  jwks: { keys: [jwk] },
  scopes: ["orders:read", "profile", "offline_access"],
  // Every refresh rotates, as the token service's RefreshTokens does.
  rotateRefreshToken: true,
  findAccount: async (_ctx: unknown, accountId: string) => ({
    accountId,
    claims: async () => ({ sub: accountId }),
  }),
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: SCOPE,
        audience: RESOURCE,
        accessTokenTTL: 900,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "ES256" } },
      }),
    },
  },
});

const callback = provider.callback();
const server = createServer(async (req, res) => {
  if (req.method === "POST" && req.url === "/bench/refresh-token") {
    const client = await provider.Client.find("bench");
    const grant = new provider.Grant({ accountId: "bench-user", clientId: "bench" });
    grant.addResourceScope(RESOURCE, SCOPE);
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      client,
      accountId: "bench-user",
      grantId,
      scope: SCOPE,
      resource: RESOURCE,
      gty: "authorization_code",
    });
    res.end(await token.save());
    return;
  }
  callback(req, res);
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === "object" ? address?.port : 0 })}\n`,
  );
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
