import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { Queue } from "bullmq";
import { queuePrefix } from "./agents/queue";
import { DEMO_USER } from "./bootstrap";
import { openDatabase } from "./db";
import { freePort } from "./private-redis-server";
import { createLogger } from "./logger";
import { createWebHandler, WebBuildMissingError } from "./web/next-handler";
import { TRPC_PATH } from "./http-server";
import type { AppRouter } from "./trpc/root";
import { eventually, openTestPostgres } from "../test/harness";

const root = path.resolve(import.meta.dirname, "../..");
// Each test starts Pulse as a process (and some npm too): slow on a busy two-core machine.
vi.setConfig({ testTimeout: 240_000 });
const children: ChildProcess[] = [];
const dirs: string[] = [];

const groups: number[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  for (const group of groups.splice(0)) {
    try {
      process.kill(-group, "SIGKILL");
    } catch {
      // The group has already gone.
    }
  }
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Runs an entry point the way `npm start` / `npm run worker` do (a local install: no NODE_ENV), collecting its output. */
function run(entry: string, env: Record<string, string>) {
  return watch(
    spawn(process.execPath, ["--import", "tsx", entry], {
      cwd: root,
      env: baseEnv(env),
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
}

function baseEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  // Next's types declare NODE_ENV always set; a local install leaves it unset.
  return { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env } as unknown as NodeJS.ProcessEnv;
}

/** Collects a child's output and tells when it exits. */
function watch(child: ChildProcess) {
  children.push(child);
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe("npm start", () => {
  it("stops with a message naming each bad variable", async () => {
    const started = run("src/server/main.ts", { PORT: "eighty", REDIS_URL: "http://nope" });
    expect(await started.exited).toBe(1);
    expect(started.output()).toContain('PORT: must be a number (got "eighty")');
    expect(started.output()).toContain("REDIS_URL: must start with redis:// or rediss://");
  });

  it("says in one line how to get Redis when there is none", async () => {
    const started = run("src/server/main.ts", {
      REDIS_SERVER_BIN: "redis-server-that-does-not-exist",
      PULSE_WEB: "false",
    });
    expect(await started.exited).toBe(1);
    const lines = started.output().trim().split("\n");
    expect(lines.at(-1)).toMatch(/^Pulse needs Redis: .*apt-get install -y redis-server.* or set REDIS_URL=/);
  });

  it("serves the API with embedded defaults, seeds the demo tenant whose chain runs, and drains on SIGTERM", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "pulse-start-"));
    dirs.push(dataDir);
    const started = run("src/server/main.ts", {
      PORT: "0",
      HOST: "127.0.0.1",
      PULSE_WEB: "false",
      PGLITE_DIR: path.join(dataDir, "pglite"),
      DEMO_SPEED: "0.01",
      DEMO_FAILURE_RATE: "0",
      LISTEN_BACKLOG: "1000",
    });
    const line = await eventually(
      started.output,
      (out) => /Pulse is running on http:\/\/127\.0\.0\.1:(\d+)/.test(out),
      "the start-up line",
      120_000,
    );
    const port = /Pulse is running on http:\/\/127\.0\.0\.1:(\d+)/.exec(line)![1];
    // A listening socket's Send-Q, as ss shows it, is its backlog (capped by net.core.somaxconn).
    const somaxconn = Number(await readFile("/proc/sys/net/core/somaxconn", "utf8"));
    const listening = execFileSync("ss", ["-Hltn", `sport = :${port}`], { encoding: "utf8" })
      .trim()
      .split(/\s+/);
    expect(Number(listening[2])).toBe(Math.min(1000, somaxconn));
    const anonymous = createTRPCClient<AppRouter>({
      links: [httpBatchLink({ url: `http://127.0.0.1:${port}${TRPC_PATH}` })],
    });
    const { token } = await anonymous.auth.login.mutate({ email: DEMO_USER.email, password: DEMO_USER.password });
    const client = createTRPCClient<AppRouter>({
      links: [
        httpBatchLink({ url: `http://127.0.0.1:${port}${TRPC_PATH}`, headers: { authorization: `Bearer ${token}` } }),
      ],
    });
    const context = await eventually(
      () => client.context.get.query(),
      (c) => c?.status === "completed",
      "the demo setup chain",
      120_000,
    );
    expect(context?.content).toContain("# Context file");
    // The writer completes the context file a moment before its own run completes.
    const runs = await eventually(
      async () => (await client.agent.list.query()).runs,
      (list) => list.every((r) => r.status !== "queued" && r.status !== "active"),
      "the chain's runs to end",
      120_000,
    );
    expect(runs.map((r) => `${r.agentRole}:${r.status}`).sort()).toEqual([
      "client-researcher:completed",
      "competitor-researcher:completed",
      "context-file-writer:completed",
    ]);
    started.child.kill("SIGTERM");
    expect(await started.exited).toBe(0);
  });

  it("stops cleanly, its private redis-server with it, on a SIGTERM that arrives while it starts", async () => {
    const started = await startEmbedded();
    started.child.kill("SIGTERM");
    expect(await started.exited).toBe(0);
    expect(started.output()).toContain("shutting down");
    expect(await answers(started.redisUrl)).toBe(false);
  });

  it("takes its private redis-server, on the port REDIS_SERVER_PORT chose, with it when it is killed", async () => {
    const port = await freePort();
    const started = await startEmbedded({ REDIS_SERVER_PORT: String(port) });
    expect(started.redisUrl).toBe(`redis://127.0.0.1:${port}`);
    expect(await answers(started.redisUrl)).toBe(true);
    started.child.kill("SIGKILL");
    await started.exited;
    await eventually(
      () => answers(started.redisUrl),
      (up) => !up,
      "the private redis-server to stop",
    );
  });

  /** `npm start` with embedded defaults, once it has started its private redis-server. */
  async function startEmbedded(env: Record<string, string> = {}) {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "pulse-start-"));
    dirs.push(dataDir);
    const started = run("src/server/main.ts", {
      PORT: "0",
      HOST: "127.0.0.1",
      PULSE_WEB: "false",
      PGLITE_DIR: path.join(dataDir, "pglite"),
      ...env,
    });
    const output = await eventually(
      started.output,
      (out) => /started a private redis-server/.test(out),
      "the private redis-server",
      120_000,
    );
    return { ...started, redisUrl: /"url":"(redis:\/\/[^"]+)"/.exec(output)![1]! };
  }
});

describe("stopping npm start", () => {
  /** A run of the demo chain's first agent long enough to be stopped in the middle (about 4 s). */
  const midRun = { PULSE_DEMO: "true", DEMO_SPEED: "0.5", DEMO_FAILURE_RATE: "0", LOG_LEVEL: "debug" };
  const runStarted = (out: string) => /"agentRole":"client-researcher".*"msg":"agent run started"/.test(out);

  it("drains on a terminal's Ctrl-C (SIGINT to the whole process group): the running run completes on attempt 1, then the private redis-server stops", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "pulse-ctrl-c-"));
    dirs.push(dataDir);
    // A terminal's foreground job is a process group of its own: npm, the shell npm runs, Node.
    const npm = watch(
      spawn("npm", ["start"], {
        cwd: root,
        detached: true,
        // A generous drain, so a busy machine's slow run still finishes rather than being handed back.
        env: baseEnv({
          PORT: "0",
          HOST: "127.0.0.1",
          PULSE_WEB: "false",
          PGLITE_DIR: path.join(dataDir, "pglite"),
          SHUTDOWN_DRAIN_SECONDS: "120",
          ...midRun,
        }),
        stdio: ["ignore", "pipe", "pipe"],
      }),
    );
    groups.push(npm.child.pid!);
    const output = await eventually(npm.output, runStarted, "the demo chain's first run to start", 90_000);
    const redisUrl = /"url":"(redis:\/\/[^"]+)"[^\n]*started a private redis-server/.exec(output)![1]!;

    process.kill(-npm.child.pid!, "SIGINT");
    // npm ends itself with the signal it was sent once its script has exited; Pulse exits 0.
    await npm.exited;
    expect(npm.output()).toContain("agent run completed");
    expect(npm.output()).not.toMatch(/shutdown took longer|shutdown failed|handing the run back/);
    expect(await answers(redisUrl)).toBe(false);
    const database = await openDatabase({ pgliteDir: path.join(dataDir, "pglite") });
    try {
      const run = await database.prisma.agentRun.findFirst({ where: { agentRole: "client-researcher" } });
      expect({ status: run?.status, attempt: run?.attempt }).toEqual({ status: "completed", attempt: 1 });
    } finally {
      await database.close();
    }
  });

  it("on a second signal during the drain, hands the running job back to the queue and exits at once", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "pulse-second-signal-"));
    dirs.push(dataDir);
    const prefix = `test-second-signal-${Date.now()}`;
    // The drain would wait ten minutes for the run: only the second signal can end it in time.
    const started = run("src/server/main.ts", {
      PORT: "0",
      HOST: "127.0.0.1",
      PULSE_WEB: "false",
      PGLITE_DIR: path.join(dataDir, "pglite"),
      REDIS_URL: inject("redisUrl"),
      REDIS_PREFIX: prefix,
      SHUTDOWN_DRAIN_SECONDS: "600",
      ...midRun,
      DEMO_SPEED: "10",
    });
    await eventually(started.output, runStarted, "the demo chain's first run to start", 90_000);
    started.child.kill("SIGINT");
    await eventually(started.output, (out) => out.includes("shutting down"), "the drain to begin", 60_000);
    // A repeat within a second is taken for the echo of the first (npm forwards what it got).
    await new Promise((r) => setTimeout(r, 1_500));
    started.child.kill("SIGINT");
    expect(await started.exited).toBe(0);
    expect(started.output()).toContain("handing the run back to the queue");

    const connection = new Redis(inject("redisUrl"));
    const queue = new Queue("client-researcher", { connection, prefix: queuePrefix(prefix, "client-researcher") });
    try {
      expect(await queue.getJobCounts("wait", "active")).toEqual({ wait: 1, active: 0 });
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
      await connection.quit();
    }
  });
});

describe("npm start under NODE_ENV=production", () => {
  it("says in one line that it needs REDIS_URL instead of starting a private redis-server", async () => {
    const started = run("src/server/main.ts", { NODE_ENV: "production", PULSE_WEB: "false" });
    expect(await started.exited).toBe(1);
    expect(started.output()).toContain("REDIS_URL: is required when NODE_ENV=production");
    expect(started.output()).not.toContain("started a private redis-server");
  });

  it("says in one line that the dashboard must be built beforehand instead of building it", async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), "pulse-no-build-"));
    dirs.push(empty);
    const attempt = createWebHandler({
      mode: "prebuilt",
      hostname: "127.0.0.1",
      port: 0,
      logger: createLogger("silent"),
      root: empty,
    });
    await expect(attempt).rejects.toThrow(WebBuildMissingError);
    await expect(attempt).rejects.toThrow("run `npm run build` first");
  });
});

describe("npm run worker", () => {
  it("refuses the embedded defaults, which belong to one process", async () => {
    const started = run("src/server/worker-main.ts", {});
    expect(await started.exited).toBe(1);
    expect(started.output()).toContain("set REDIS_URL (or REDIS_CLUSTER_NODES) and DATABASE_URL");
  });

  it.skipIf(!inject("databaseUrl"))("runs workers against a shared Redis and PostgreSQL", async () => {
    const { database, url } = await openTestPostgres();
    try {
      const started = run("src/server/worker-main.ts", {
        REDIS_URL: inject("redisUrl"),
        DATABASE_URL: url,
        REDIS_PREFIX: "test-worker-main",
      });
      await eventually(started.output, (out) => out.includes("workers running"), "the workers to start", 90_000);
      started.child.kill("SIGTERM");
      expect(await started.exited).toBe(0);
    } finally {
      await database.close();
    }
  });
});

/** Whether a Redis answers at `url`. */
async function answers(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
