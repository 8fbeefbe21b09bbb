import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { GetJwksResponseSchema } from "@authplat/contracts/auth/token/v1";
import { fetchJwksFrom } from "./token-service-keys.ts";

const ec = { kty: "EC", kid: "k-ec", use: "sig", alg: "ES256", crv: "P-256", x: "xx", y: "yy" };
const okp = { kty: "OKP", kid: "k-ed", use: "sig", alg: "EdDSA", crv: "Ed25519", x: "xx", y: "" };

describe("fetchJwksFrom", () => {
  it("translates the token service's JWKS and its max_age into a key set with a lifetime", async () => {
    const fetch = fetchJwksFrom({
      getJwks: async () =>
        create(GetJwksResponseSchema, {
          keys: [ec, okp],
          maxAge: create(DurationSchema, { seconds: 90n, nanos: 500_000_000 }),
        }),
    });
    expect(await fetch()).toEqual({
      keys: [ec, { kty: "OKP", kid: "k-ed", use: "sig", alg: "EdDSA", crv: "Ed25519", x: "xx" }],
      maxAgeMs: 90_500,
    });
  });

  it("gives no lifetime when the token service sends no max_age", async () => {
    const fetch = fetchJwksFrom({
      getJwks: async () => create(GetJwksResponseSchema, { keys: [ec] }),
    });
    expect(await fetch()).toEqual({ keys: [ec], maxAgeMs: undefined });
  });
});
