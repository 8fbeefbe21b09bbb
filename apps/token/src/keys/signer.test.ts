import { generateKeyPairSync } from "node:crypto";
import { calculateJwkThumbprint, compactVerify, importJWK } from "jose";
import { describe, expect, it } from "vitest";
import { generateLocalSigner, loadLocalSigner, localSigner, SIGNING_ALGORITHMS } from "./signer.ts";

async function signCompact(
  signer: Awaited<ReturnType<typeof generateLocalSigner>>,
  payload: string,
) {
  const header = Buffer.from(JSON.stringify({ alg: signer.algorithm, kid: signer.keyId })).toString(
    "base64url",
  );
  const body = Buffer.from(payload).toString("base64url");
  const signature = await signer.sign(Buffer.from(`${header}.${body}`));
  return `${header}.${body}.${Buffer.from(signature).toString("base64url")}`;
}

describe("localSigner", () => {
  it.each(SIGNING_ALGORITHMS)(
    "produces %s JWS signatures that verify against the published JWK",
    async (alg) => {
      const signer = await generateLocalSigner(alg);
      const jws = await signCompact(signer, "hello");
      const key = await importJWK({ ...signer.publicJwk }, alg);
      const { payload, protectedHeader } = await compactVerify(jws, key, { algorithms: [alg] });
      expect(Buffer.from(payload).toString()).toBe("hello");
      expect(protectedHeader.kid).toBe(signer.keyId);
      expect(signer.publicJwk).toMatchObject({ alg, use: "sig", kid: signer.keyId });
      expect(signer.publicJwk).not.toHaveProperty("d");
    },
  );

  it("refuses a key that does not fit the algorithm", () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    expect(() => localSigner(privateKey, "ES256", "k1")).toThrow(
      "the signing key does not fit ES256",
    );
    const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
    expect(() => localSigner(p384, "ES256", "k1")).toThrow("the signing key does not fit ES256");
  });
});

describe("loadLocalSigner", () => {
  it("derives the key ID from the RFC 7638 thumbprint, so replicas agree", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const first = loadLocalSigner(pem, "ES256");
    const second = loadLocalSigner(pem, "ES256");
    expect(first.keyId).toBe(second.keyId);
    expect(first.keyId).toBe(await calculateJwkThumbprint({ ...first.publicJwk }, "sha256"));
  });
});
