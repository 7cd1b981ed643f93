import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import { Redis } from "ioredis";
import { afterEach, describe, expect, inject, it } from "vitest";
import { DEMO_USER } from "./bootstrap";
import { TRPC_PATH } from "./http-server";
import type { AppRouter } from "./trpc/root";
import { eventually, openTestPostgres } from "../test/harness";

const root = path.resolve(import.meta.dirname, "../..");
const children: ChildProcess[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Runs an entry point the way `npm start` / `npm run worker` do, collecting its output. */
function run(entry: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", entry], {
    cwd: root,
    env: { NODE_ENV: "production", PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
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
    const started = run("src/server/main.ts", { REDIS_SERVER_BIN: "redis-server-that-does-not-exist", PULSE_WEB: "false" });
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
    });
    const line = await eventually(started.output, (out) => /Pulse is running on http:\/\/127\.0\.0\.1:(\d+)/.test(out), "the start-up line", 60_000);
    const port = /Pulse is running on http:\/\/127\.0\.0\.1:(\d+)/.exec(line)![1];
    const anonymous = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `http://127.0.0.1:${port}${TRPC_PATH}` })] });
    const { token } = await anonymous.auth.login.mutate({ email: DEMO_USER.email, password: DEMO_USER.password });
    const client = createTRPCClient<AppRouter>({
      links: [httpBatchLink({ url: `http://127.0.0.1:${port}${TRPC_PATH}`, headers: { authorization: `Bearer ${token}` } })],
    });
    const context = await eventually(() => client.context.get.query(), (c) => c?.status === "completed", "the demo setup chain", 30_000);
    expect(context?.content).toContain("# Context file");
    // The writer completes the context file a moment before its own run completes.
    const runs = await eventually(
      async () => (await client.agent.list.query()).runs,
      (list) => list.every((r) => r.status !== "queued" && r.status !== "active"),
      "the chain's runs to end",
      30_000,
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

  it("takes its private redis-server with it when it is killed", async () => {
    const started = await startEmbedded();
    expect(await answers(started.redisUrl)).toBe(true);
    started.child.kill("SIGKILL");
    await started.exited;
    await eventually(() => answers(started.redisUrl), (up) => !up, "the private redis-server to stop");
  });

  /** `npm start` with embedded defaults, once it has started its private redis-server. */
  async function startEmbedded() {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "pulse-start-"));
    dirs.push(dataDir);
    const started = run("src/server/main.ts", { PORT: "0", HOST: "127.0.0.1", PULSE_WEB: "false", PGLITE_DIR: path.join(dataDir, "pglite") });
    const output = await eventually(started.output, (out) => /started a private redis-server/.test(out), "the private redis-server", 60_000);
    return { ...started, redisUrl: /"url":"(redis:\/\/[^"]+)"/.exec(output)![1]! };
  }

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
});

describe("npm run worker", () => {
  it("refuses the embedded defaults, which belong to one process", async () => {
    const started = run("src/server/worker-main.ts", {});
    expect(await started.exited).toBe(1);
    expect(started.output()).toContain("set REDIS_URL and DATABASE_URL");
  });

  it.skipIf(!inject("databaseUrl"))("runs workers against a shared Redis and PostgreSQL", async () => {
    const { database, url } = await openTestPostgres();
    try {
      const started = run("src/server/worker-main.ts", { REDIS_URL: inject("redisUrl"), DATABASE_URL: url, REDIS_PREFIX: "test-worker-main" });
      await eventually(started.output, (out) => out.includes("workers running"), "the workers to start", 30_000);
      started.child.kill("SIGTERM");
      expect(await started.exited).toBe(0);
    } finally {
      await database.close();
    }
  });
});
