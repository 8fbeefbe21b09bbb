import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import type { Server as NetServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { ServingStatusMap } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { probeHealth, runHealthProbeCli } from "./health-probe.ts";

const TOKEN_ID = "spiffe://auth.local/ns/auth/sa/token";
const MFA_ID = "spiffe://auth.local/ns/auth/sa/mfa";
const OPERATOR_ID = "spiffe://auth.local/ns/auth/sa/operator";
const TOKEN_SERVICE = "auth.token.v1.TokenService";
const PROBE_SCRIPT = fileURLToPath(new URL("./health-probe.ts", import.meta.url));

interface Pem {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly certFile: string;
  readonly keyFile: string;
}

let dir: string;
let ca: Buffer;
let caFile: string;
let operator: Pem;
const servers: Server[] = [];
const netServers: NetServer[] = [];
const netSockets: Socket[] = [];

/**
 * A throwaway PKI made with the openssl CLI: `openssl req -x509` writes a fresh P-256 key and
 * certificate `<name>-key.pem` / `<name>.pem`, self-signed or signed by `issuer`.
 */
function newCert(name: string, extensions: string[], issuer?: { cert: string; key: string }): void {
  const args = [
    ..."req -x509 -config min.cnf -days 1 -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256".split(
      " ",
    ),
    ...["-keyout", `${name}-key.pem`, "-out", `${name}.pem`, "-subj", `/O=${name}`],
    ...(issuer ? ["-CA", issuer.cert, "-CAkey", issuer.key] : []),
    ...extensions.flatMap((extension) => ["-addext", extension]),
  ];
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(name: string): { cert: string; key: string } {
  newCert(name, [
    "basicConstraints=critical,CA:TRUE",
    "keyUsage=critical,keyCertSign,cRLSign",
    "subjectAltName=URI:spiffe://auth.local",
  ]);
  return { cert: `${name}.pem`, key: `${name}-key.pem` };
}

/** A leaf X509-SVID-shaped certificate with the given subjectAltName (e.g. `URI:spiffe://...`). */
function makeLeaf(
  name: string,
  subjectAltName: string,
  issuer = { cert: "ca.pem", key: "ca-key.pem" },
): Pem {
  newCert(
    name,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth,clientAuth",
      `subjectAltName=${subjectAltName}`,
    ],
    issuer,
  );
  const certFile = join(dir, `${name}.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile };
}

/** Starts a real grpc-js server with mTLS (client certificate required) and the health service. */
async function startHealthServer(identity: Pem, statuses: ServingStatusMap): Promise<string> {
  const server = new Server();
  new HealthImplementation(statuses).addToServer(server);
  servers.push(server);
  const credentials = ServerCredentials.createSsl(
    ca,
    [{ cert_chain: identity.cert, private_key: identity.key }],
    true,
  );
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", credentials, (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    );
  });
  return `127.0.0.1:${port}`;
}

/** A TCP listener that accepts connections and never answers, so a TLS handshake stalls. */
async function startSilentListener(): Promise<string> {
  const server = createServer((socket) => netSockets.push(socket));
  netServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return `127.0.0.1:${address.port}`;
}

/** An address where nothing listens: bind port 0, note the port, close. */
async function closedAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  await new Promise<void>((resolve, reject) =>
    server.close((error) => (error ? reject(error) : resolve())),
  );
  return `127.0.0.1:${address.port}`;
}

function probe(
  addr: string,
  expectSpiffeId: string,
  extra: { service?: string; timeoutMs?: number } = {},
) {
  return probeHealth({
    addr,
    cert: operator.cert,
    key: operator.key,
    ca,
    expectSpiffeId,
    ...extra,
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "health-probe-test-"));
  // A minimal config so that `req -x509` adds no extensions beyond the -addext ones.
  writeFileSync(
    join(dir, "min.cnf"),
    "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nO = test\n",
  );
  makeCa("ca");
  caFile = join(dir, "ca.pem");
  ca = readFileSync(caFile);
  operator = makeLeaf("operator", `URI:${OPERATOR_ID}`);
});

afterAll(async () => {
  for (const server of servers) server.forceShutdown();
  for (const socket of netSockets) socket.destroy();
  await Promise.all(
    netServers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
  );
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("probeHealth", () => {
  it("reports ok when the server answers SERVING", async () => {
    const addr = await startHealthServer(makeLeaf("token", `URI:${TOKEN_ID}`), { "": "SERVING" });

    await expect(probe(addr, TOKEN_ID)).resolves.toEqual({ ok: true, status: "SERVING" });
  });

  it("reports not ok with the status when the server answers NOT_SERVING", async () => {
    const addr = await startHealthServer(makeLeaf("token-down", `URI:${TOKEN_ID}`), {
      "": "NOT_SERVING",
      [TOKEN_SERVICE]: "NOT_SERVING",
    });

    await expect(probe(addr, TOKEN_ID)).resolves.toEqual({
      ok: false,
      status: "NOT_SERVING",
      reason: "server is NOT_SERVING",
    });
    await expect(probe(addr, TOKEN_ID, { service: TOKEN_SERVICE })).resolves.toEqual({
      ok: false,
      status: "NOT_SERVING",
      reason: `service "${TOKEN_SERVICE}" is NOT_SERVING`,
    });
  });

  it("asks about the named service and reports NOT_FOUND for one the server does not know", async () => {
    const addr = await startHealthServer(makeLeaf("token-named", `URI:${TOKEN_ID}`), {
      "": "NOT_SERVING",
      [TOKEN_SERVICE]: "SERVING",
    });

    await expect(probe(addr, TOKEN_ID, { service: TOKEN_SERVICE })).resolves.toEqual({
      ok: true,
      status: "SERVING",
    });
    const unknown = await probe(addr, TOKEN_ID, { service: "auth.nothing.v1.Nothing" });
    expect(unknown.ok).toBe(false);
    expect(!unknown.ok && unknown.reason).toBe(
      "Health/Check failed: NOT_FOUND: Health status unknown for service auth.nothing.v1.Nothing",
    );
  });

  it("refuses a server whose SPIFFE ID is not the expected one and names the mismatch", async () => {
    const addr = await startHealthServer(makeLeaf("mfa", `URI:${MFA_ID}`), { "": "SERVING" });

    await expect(probe(addr, TOKEN_ID)).resolves.toEqual({
      ok: false,
      reason: `server identity rejected: SPIFFE ID mismatch: expected ${TOKEN_ID}, got ${MFA_ID}`,
    });
  });

  it("refuses a server certificate with more than one URI SAN, even if one of them is expected", async () => {
    const addr = await startHealthServer(makeLeaf("two-uris", `URI:${TOKEN_ID},URI:${MFA_ID}`), {
      "": "SERVING",
    });

    await expect(probe(addr, TOKEN_ID)).resolves.toEqual({
      ok: false,
      reason: `server identity rejected: expected exactly one URI SAN (${TOKEN_ID}), found 2: ${TOKEN_ID}, ${MFA_ID}`,
    });
  });

  it("does not fall back to host name checking for a certificate that names only the host", async () => {
    const addr = await startHealthServer(makeLeaf("dns-only", "DNS:localhost,IP:127.0.0.1"), {
      "": "SERVING",
    });

    await expect(probe(addr, TOKEN_ID)).resolves.toEqual({
      ok: false,
      reason: `server identity rejected: expected exactly one URI SAN (${TOKEN_ID}), found 0`,
    });
  });

  it("refuses a server whose certificate does not chain to the trust bundle, before any identity check", async () => {
    const otherCa = makeCa("other-ca");
    const addr = await startHealthServer(makeLeaf("impostor", `URI:${TOKEN_ID}`, otherCa), {
      "": "SERVING",
    });

    const result = await probe(addr, TOKEN_ID);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/^Health\/Check failed: UNAVAILABLE: /);
    expect(!result.ok && result.reason).not.toMatch(/SPIFFE ID|URI SAN/);
  });

  it("reports not ok when nothing listens at the address", async () => {
    const result = await probe(await closedAddress(), TOKEN_ID, { timeoutMs: 2000 });

    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(
      /^Health\/Check failed: UNAVAILABLE: .*ECONNREFUSED/,
    );
  }, 10_000);

  it("gives up at the deadline when the peer never completes the handshake", async () => {
    const result = await probe(await startSilentListener(), TOKEN_ID, { timeoutMs: 300 });

    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/^no answer within 300 ms \(DEADLINE_EXCEEDED: /);
  }, 10_000);

  it("rejects an expected ID that is not a SPIFFE workload ID without connecting", async () => {
    await expect(probe("127.0.0.1:1", "https://auth.local/token")).resolves.toEqual({
      ok: false,
      reason: 'invalid expected SPIFFE ID "https://auth.local/token"',
    });
    await expect(probe("127.0.0.1:1", "spiffe://auth.local")).resolves.toMatchObject({ ok: false });
  });

  it("reports unusable key material as a reason instead of throwing", async () => {
    const result = await probeHealth({
      addr: "127.0.0.1:1",
      cert: operator.cert,
      key: Buffer.from("not a key"),
      ca,
      expectSpiffeId: TOKEN_ID,
    });

    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/^cannot load credentials: /);
  });
});

describe("health-probe CLI", () => {
  const exec = promisify(execFile);

  function cliArgs(addr: string, expectSpiffeId: string): string[] {
    return [
      "--addr",
      addr,
      "--cert",
      operator.certFile,
      "--key",
      operator.keyFile,
      "--ca",
      caFile,
      "--expect-spiffe-id",
      expectSpiffeId,
      "--timeout-ms",
      "2000",
    ];
  }

  it("exits 0 on SERVING and 1 with a single stderr line otherwise, as a separate node process", async () => {
    const addr = await startHealthServer(makeLeaf("token-cli", `URI:${TOKEN_ID}`), {
      "": "SERVING",
    });

    const serving = await exec(process.execPath, [PROBE_SCRIPT, ...cliArgs(addr, TOKEN_ID)]);
    expect(serving.stderr).toBe("");

    const refused = await exec(process.execPath, [PROBE_SCRIPT, ...cliArgs(addr, MFA_ID)]).then(
      () => expect.unreachable("the probe should have exited 1"),
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `health-probe: ${addr}: server identity rejected: SPIFFE ID mismatch: expected ${MFA_ID}, got ${TOKEN_ID}\n`,
    );
  }, 20_000);

  it("exits 1 naming the missing options", async () => {
    const lines: string[] = [];
    const code = await runHealthProbeCli(["--addr", "127.0.0.1:1"], {
      write: (text: string) => lines.push(text),
    });

    expect(code).toBe(1);
    expect(lines).toEqual([
      "health-probe: missing required option(s): --cert, --key, --ca, --expect-spiffe-id\n",
    ]);
  });

  it("exits 1 naming an unreadable certificate file", async () => {
    const lines: string[] = [];
    const missingFile = join(dir, "missing.pem");
    const code = await runHealthProbeCli(
      [
        "--addr",
        "127.0.0.1:1",
        "--cert",
        missingFile,
        "--key",
        operator.keyFile,
        "--ca",
        caFile,
        "--expect-spiffe-id",
        TOKEN_ID,
      ],
      { write: (text: string) => lines.push(text) },
    );

    expect(code).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(missingFile);
  });
});
