/**
 * `node bench/verify-primitives.bench.ts`: the in-process cost of the pieces of token
 * validation, in one run so the rows compare: jose's `jwtVerify` and `compactVerify`
 * (WebCrypto) against `node:crypto` `verify` with a KeyObject (synchronous, and with a callback
 * on the libuv pool) for the same ES256 and EdDSA tokens, the cost of a cache key (SHA-256 of
 * the token, or the token itself as a Map key), and {@link TokenValidator} without and with its
 * verification cache. Prints a table and writes JSON to bench/results/verify-primitives.json.
 *
 * @module
 */
import { createHash, KeyObject, verify } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { resolve } from "node:path";
import {
  compactVerify,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
} from "jose";
import { JwksCache } from "@authplat/auth-edge/jwks-cache";
import { TokenValidator } from "@authplat/auth-edge/token-validator";
import { measure, type Measurement } from "./measure.ts";

const root = resolve(import.meta.dirname, "..");
const OPTIONS = { warmup: 1_000, samples: 5_000, concurrency: 64, throughputMs: 1_500 };
/** Operations run (64 in flight) to measure CPU time per operation. */
const CPU_OPERATIONS = 5_000;
const ISSUER = "https://auth.local";
const AUDIENCE = "https://api.auth.local";
const ALGORITHMS = ["ES256", "EdDSA"] as const;

interface Signer {
  readonly alg: (typeof ALGORITHMS)[number];
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

async function signer(alg: Signer["alg"]): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, kid: `bench-${alg}`, privateKey, publicKey };
}

function issue(key: Signer, jti: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    client_id: "bench",
    scope: "orders:read profile",
    jti,
  })
    .setProtectedHeader({ alg: key.alg, typ: "at+jwt", kid: key.kid })
    .setIssuer(ISSUER)
    .setSubject("bench-user")
    .setAudience([AUDIENCE])
    .setIssuedAt(now)
    .setExpirationTime(now + 3_600)
    .sign(key.privateKey);
}

/** node:crypto verification of a compact JWS, the signature part only. */
function nodeVerifier(key: Signer) {
  const keyObject = KeyObject.from(key.publicKey);
  const digest = key.alg === "ES256" ? "sha256" : null;
  const options =
    key.alg === "ES256" ? { key: keyObject, dsaEncoding: "ieee-p1363" as const } : keyObject;
  const parts = (token: string) => {
    const dot = token.lastIndexOf(".");
    return [
      Buffer.from(token.slice(0, dot)),
      Buffer.from(token.slice(dot + 1), "base64url"),
    ] as const;
  };
  return {
    sync(token: string): boolean {
      const [data, signature] = parts(token);
      return verify(digest, data, options, signature);
    },
    async(token: string): Promise<boolean> {
      const [data, signature] = parts(token);
      return new Promise((done, fail) =>
        verify(digest, data, options, signature, (error, ok) => (error ? fail(error) : done(ok))),
      );
    },
  };
}

const signers = await Promise.all(ALGORITHMS.map(signer));
const jwks = await Promise.all(
  signers.map(async (key) => ({
    ...(await exportJWK(key.publicKey)),
    kid: key.kid,
    alg: key.alg,
    use: "sig",
  })),
);

function validator(cacheSize: number): TokenValidator {
  const keys = new JwksCache({
    fetchKeys: async () => jwks,
    algorithms: [...ALGORITHMS],
    nowMs: () => Date.now(),
    minRefetchIntervalMs: 5_000,
  });
  return new TokenValidator({
    keys,
    issuer: ISSUER,
    audiences: [AUDIENCE],
    algorithms: [...ALGORITHMS],
    clockToleranceSeconds: 5,
    nowMs: () => Date.now(),
    verificationCacheSize: cacheSize,
  });
}

interface Row extends Measurement {
  /** CPU time of the whole process (all threads, user + system) per operation, in µs. */
  readonly cpuMicrosPerOp: number;
}

/**
 * Process CPU time per operation with 64 in flight. On a shared machine the wall-clock rows
 * swing with other load; CPU time per operation swings much less, and it counts the work
 * WebCrypto and callback-style node:crypto do on the libuv pool, which wall time per call hides.
 */
async function cpuPerOperation(operation: () => Promise<unknown>): Promise<number> {
  let remaining = CPU_OPERATIONS;
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: OPTIONS.concurrency }, async () => {
      while (remaining > 0) {
        remaining -= 1;
        await operation();
      }
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / CPU_OPERATIONS;
}

async function row(name: string, operation: () => Promise<unknown>): Promise<Row> {
  const measured = await measure(name, operation, OPTIONS);
  return { ...measured, cpuMicrosPerOp: await cpuPerOperation(operation) };
}

const results: Row[] = [];
for (const key of signers) {
  const token = await issue(key, "bench-jti");
  const node = nodeVerifier(key);
  if (!node.sync(token) || !(await node.async(token)))
    throw new Error("node:crypto does not verify the token");
  results.push(
    await row(`${key.alg} jose jwtVerify (WebCrypto)`, () =>
      jwtVerify(token, key.publicKey, { algorithms: [key.alg] }),
    ),
    await row(`${key.alg} jose compactVerify (WebCrypto)`, () =>
      compactVerify(token, key.publicKey, { algorithms: [key.alg] }),
    ),
    await row(`${key.alg} node:crypto verify, sync`, async () => node.sync(token)),
    await row(`${key.alg} node:crypto verify, callback`, () => node.async(token)),
  );
  const uncached = validator(0);
  const cached = validator(10_000);
  const small = validator(1_000);
  for (const v of [uncached, cached, small]) {
    const result = await v.validate(token);
    if (!result.valid) throw new Error(`the benchmark token does not validate: ${result.message}`);
  }
  // Every call a new token: the cache only adds its bookkeeping.
  const unique = await Promise.all(Array.from({ length: 2_000 }, (_, i) => issue(key, `u-${i}`)));
  let next = 0;
  results.push(
    await row(`${key.alg} TokenValidator, no cache`, () => uncached.validate(token)),
    await row(`${key.alg} TokenValidator, cache hit (same token)`, () => cached.validate(token)),
    await row(
      `${key.alg} TokenValidator, cache of 1000, 2000 tokens round robin (all misses)`,
      () => small.validate(unique[(next += 1) % unique.length]!),
    ),
  );
}
const sample = await issue(signers[0]!, "digest-sample");
const map = new Map<string, number>([[sample, 1]]);
results.push(
  await row("SHA-256 base64url of the token (cache key)", async () =>
    createHash("sha256").update(sample).digest("base64url"),
  ),
  await row("Map.get with the token string as key (fresh string)", async () =>
    map.get(`${sample} `.trimEnd()),
  ),
);

const fmt = (value: number) => value.toFixed(4);
console.log(
  `\nnode ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? "unknown"}); ${OPTIONS.samples} sequential samples, throughput with ${OPTIONS.concurrency} in flight for ${OPTIONS.throughputMs} ms\n`,
);
console.log("| operation | p50 ms | p99 ms | mean ms | ops/s | CPU µs/op |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const r of results) {
  console.log(
    `| ${r.name} | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${fmt(r.meanMs)} | ${Math.round(r.throughputPerSec).toLocaleString("en-US")} | ${r.cpuMicrosPerOp.toFixed(1)} |`,
  );
}
await mkdir(resolve(root, "bench/results"), { recursive: true });
await writeFile(
  resolve(root, "bench/results/verify-primitives.json"),
  `${JSON.stringify({ benchmark: "verify-primitives", at: new Date().toISOString(), node: process.version, cpus: cpus().length, options: OPTIONS, results }, null, 2)}\n`,
);
