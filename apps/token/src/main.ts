import { readFile } from "node:fs/promises";
import { loadConfigOrExit } from "@authplat/config";
import { createLogger } from "@authplat/observability";
import { runService } from "@authplat/rpc";
import { loadTokenConfig } from "./config.ts";
import { KeyRing } from "./keys/key-ring.ts";
import { generateLocalSigner, loadLocalSigner } from "./keys/signer.ts";
import { tokenServiceRegistration } from "./handlers.ts";
import { MemoryRefreshTokenStore } from "./tokens/memory-refresh-token-store.ts";
import { TokenIssuer } from "./tokens/token-issuer.ts";

const config = loadConfigOrExit("token", () => loadTokenConfig(process.env));
const logger = createLogger({ service: "token", level: config.LOG_LEVEL });
const id = (name: string) => `spiffe://${config.TRUST_DOMAIN}/ns/auth/sa/${name}`;

try {
  const signer =
    config.SIGNING_KEY_FILE === undefined
      ? await generateLocalSigner(config.SIGNING_ALG)
      : loadLocalSigner(await readFile(config.SIGNING_KEY_FILE, "utf8"), config.SIGNING_ALG);
  if (config.SIGNING_KEY_FILE === undefined) {
    logger.warn({ kid: signer.keyId }, "no SIGNING_KEY_FILE: signing with an ephemeral key");
  }
  const keys = new KeyRing(signer);
  const nowMs = () => Date.now();
  const issuer = new TokenIssuer({
    keys,
    refreshTokens: new MemoryRefreshTokenStore(nowMs),
    nowMs,
    issuer: config.JWT_ISSUER,
    accessTokenTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
    refreshTokenTtlSeconds: config.REFRESH_TOKEN_TTL_SECONDS,
  });
  await runService({
    name: "token",
    settings: config,
    logger,
    services: [
      tokenServiceRegistration({
        issuer,
        keys,
        allow: {
          issuers: [id("session-identity"), id("operator")],
          jwksReaders: [id("auth-edge"), id("session-identity"), id("operator")],
          revokers: [id("auth-edge"), id("session-identity"), id("operator")],
        },
      }),
    ],
  });
} catch (error) {
  logger.fatal({ err: error }, "token service failed to start");
  process.exit(1);
}
