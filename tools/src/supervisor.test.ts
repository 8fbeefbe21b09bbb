import type { ChildProcess } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { ServiceProcess } from "./service-process.ts";
import { describeExit, Supervisor } from "./supervisor.ts";

/** A stand-in for a service process whose serving and exit the test controls. */
function fakeProcess(name: string, port: number) {
  let serve!: () => void;
  let fail!: (error: Error) => void;
  let exit!: (code: number | NodeJS.Signals) => void;
  const serving = new Promise<{ port: number; spiffeId: string }>((resolve, reject) => {
    serve = () => resolve({ port, spiffeId: `spiffe://auth.local/ns/auth/sa/${name}` });
    fail = reject;
  });
  serving.catch(() => undefined);
  const exited = new Promise<number | NodeJS.Signals>((resolve) => (exit = resolve));
  const process: ServiceProcess = {
    name,
    child: {} as ChildProcess,
    serving,
    exited,
    stop: () => {
      exit(0);
      return exited;
    },
  };
  return { process, serve, exit, fail };
}

function harness(names: readonly string[]) {
  const said: string[] = [];
  const spawned = new Map<string, ReturnType<typeof fakeProcess>[]>();
  let port = 6000;
  const supervisor = new Supervisor({
    names,
    say: (line) => said.push(line),
    spawn: (name) => {
      const fake = fakeProcess(name, port++);
      spawned.set(name, [...(spawned.get(name) ?? []), fake]);
      queueMicrotask(fake.serve);
      return fake.process;
    },
  });
  const latest = (name: string) => spawned.get(name)!.at(-1)!;
  return { supervisor, said, spawned, latest };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("Supervisor", () => {
  it("keeps the other services running when one stops, and says which and how", async () => {
    const { supervisor, said, latest } = harness(["token", "auth-edge", "mfa"]);
    await Promise.all(["token", "auth-edge", "mfa"].map((n) => supervisor.start(n)));
    latest("token").exit("SIGKILL");
    await flush();
    expect(said).toEqual([
      'token stopped unexpectedly (killed by SIGKILL). auth-edge, mfa keep running; type "restart token" to start it again.',
    ]);
    expect(supervisor.status().map((s) => [s.name, s.state])).toEqual([
      ["token", "stopped"],
      ["auth-edge", "serving"],
      ["mfa", "serving"],
    ]);
    expect(supervisor.status()[0]!.lastExit).toBe("killed by SIGKILL");
  });

  it("restarts one service without touching the others", async () => {
    const { supervisor, said, spawned, latest } = harness(["token", "mfa"]);
    await supervisor.start("token");
    await supervisor.start("mfa");
    const mfaBefore = latest("mfa");
    await supervisor.command("restart token");
    expect(spawned.get("token")).toHaveLength(2);
    expect(spawned.get("mfa")).toEqual([mfaBefore]);
    expect(said.at(-1)).toMatch(/^token is SERVING on 127\.0\.0\.1:\d+$/);
    // The restart's own stop is expected: no "stopped unexpectedly" line.
    expect(said.some((line) => line.includes("unexpectedly"))).toBe(false);
  });

  it("stops and starts a service on command and reports status", async () => {
    const { supervisor, said } = harness(["token", "mfa"]);
    await supervisor.start("token");
    await supervisor.start("mfa");
    await supervisor.command("stop token");
    await supervisor.command("status");
    expect(said).toEqual([
      "token stopped",
      "  token              stopped (exit code 0)",
      `  mfa                serving on 127.0.0.1:${supervisor.status()[1]!.port}`,
    ]);
    await supervisor.command("start token");
    expect(supervisor.status()[0]!.state).toBe("serving");
  });

  it("answers an unknown command or service with what it accepts", async () => {
    const { supervisor, said } = harness(["token"]);
    await supervisor.command("reboot token");
    await supervisor.command("restart nope");
    expect(said[0]).toContain('commands: "status", "stop NAME", "start NAME", "restart NAME"');
    expect(said[1]).toBe('no service named "nope"; the services are token');
  });

  it("says why a service did not start instead of throwing", async () => {
    const said: string[] = [];
    const supervisor = new Supervisor({
      names: ["token"],
      say: (line) => said.push(line),
      spawn: (name) => {
        const fake = fakeProcess(name, 1);
        queueMicrotask(() => fake.fail(new Error("token exited (78) before serving")));
        return fake.process;
      },
    });
    await supervisor.command("start token");
    expect(said).toEqual(["token did not start: token exited (78) before serving"]);
  });

  it("does not report exits while everything is being stopped", async () => {
    const { supervisor, said } = harness(["token", "mfa"]);
    await supervisor.start("token");
    await supervisor.start("mfa");
    await supervisor.stopAll();
    await flush();
    expect(said).toEqual([]);
    expect(supervisor.status().every((s) => s.state === "stopped")).toBe(true);
  });
});

describe("describeExit", () => {
  it("words exit codes and signals", () => {
    expect(describeExit(1)).toBe("exit code 1");
    expect(describeExit("SIGTERM")).toBe("killed by SIGTERM");
  });
});
