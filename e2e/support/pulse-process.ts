import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import type { AppRouter } from "../../src/server/trpc/root";

const root = path.resolve(import.meta.dirname, "../..");

/**
 * Pulse as `npm start` runs it (dashboard built, one port), in a child process on a free
 * loopback port, with its own database directory and Redis key prefix on the test Redis.
 */
export class PulseProcess {
  private child?: ChildProcess;
  private dataDir = "";
  output = "";
  port = 0;

  constructor(private readonly env: Record<string, string>) {}

  async start(): Promise<this> {
    this.dataDir = await mkdtemp(path.join(os.tmpdir(), "pulse-e2e-"));
    const child = spawn(process.execPath, ["--import", "tsx", "src/server/main.ts"], {
      cwd: root,
      env: {
        NODE_ENV: "production",
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        HOST: "127.0.0.1",
        PORT: "0",
        PGLITE_DIR: path.join(this.dataDir, "pglite"),
        REDIS_PREFIX: `e2e-${randomUUID().slice(0, 8)}`,
        AUTH_SECRET: randomBytes(32).toString("hex"),
        // The demo agents and their setup chain, without the demo account: each test registers its own tenants.
        PULSE_DEMO: "true",
        PULSE_DEMO_ACCOUNT: "false",
        DEMO_FAILURE_RATE: "0",
        LOG_LEVEL: "info",
        // The test and every browser call from 127.0.0.1: one address's HTTP budget would be theirs together.
        HTTP_CALLS_PER_SECOND_PER_IP: "100000",
        ...this.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    child.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const match = /Pulse is running on http:\/\/127\.0\.0\.1:(\d+)/.exec(this.output);
      if (match) {
        this.port = Number(match[1]);
        return this;
      }
      if (child.exitCode !== null) throw new Error(`Pulse exited at start:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Pulse did not start within 120 s:\n${this.output}`);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A tRPC client over HTTP, with a bearer token when given. */
  api(token?: string) {
    return createTRPCClient<AppRouter>({
      links: [
        httpBatchLink({
          url: `${this.url}/api/trpc`,
          ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
        }),
      ],
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill("SIGTERM");
      });
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }
}
