import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import type { RedisEndpoint, RedisTarget, StandaloneRedisTarget } from "./redis";

/*
 * A redis-server of Pulse's own: kept apart from redis.ts, which the dashboard's pages reach
 * through the router, so that Next.js's build does not trace a process spawn there.
 */

export class RedisUnavailableError extends Error {
  constructor(bin: string) {
    super(
      `Pulse needs Redis: no "${bin}" on PATH. Install it (Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis) or set REDIS_URL=redis://host:6379.`,
    );
    this.name = "RedisUnavailableError";
  }
}

export async function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A private redis-server that exited as it started (a port taken, a bad argument). */
class RedisStartError extends Error {
  override name = "RedisStartError";
}

export interface PrivateRedisOptions {
  bin?: string;
  port?: number;
  /** Keep data on disk (append-only file) in `dir`; off by default, as the stream is a cache of recent events. */
  persist?: boolean;
  dir?: string;
  /** More redis-server arguments (a cluster node's, for one). */
  extraArgs?: readonly string[];
}

/** setpriv's exit code when the program it was to run does not exist. */
const SETPRIV_NOT_FOUND = 127;

/**
 * A redis-server of Pulse's own, on loopback and a free port, for `npm start` without
 * REDIS_URL and for tests. It lives as long as the process that started it (see `spawnServer`).
 */
export class PrivateRedisServer implements RedisEndpoint {
  private child?: ChildProcess;
  private ownsDir = false;
  readonly bin: string;
  port = 0;
  dir = "";

  constructor(private readonly options: PrivateRedisOptions = {}) {
    this.bin = options.bin ?? "redis-server";
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get target(): StandaloneRedisTarget {
    return { url: this.url };
  }

  /**
   * Starts the server. A port found free may be taken by another process before the server
   * binds it (or, in cluster mode, its bus port, port + 10000, may be taken): without a port
   * of the caller's, the server is tried again on another free port, a few times.
   */
  async start(): Promise<this> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOnce();
      } catch (error) {
        if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
        if (this.options.port !== undefined || !(error instanceof RedisStartError) || attempt >= 4) throw error;
      }
    }
  }

  private async startOnce(): Promise<this> {
    this.port = this.options.port ?? (await freePort());
    if (this.options.dir) {
      this.dir = this.options.dir;
    } else {
      this.dir = await mkdtemp(path.join(os.tmpdir(), "pulse-redis-"));
      this.ownsDir = true;
    }
    const args = [
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--dir",
      this.dir,
      "--save",
      "",
      "--appendonly",
      this.options.persist ? "yes" : "no",
      "--appendfsync",
      "everysec",
      "--protected-mode",
      "yes",
      "--loglevel",
      "warning",
      ...(this.options.extraArgs ?? []),
    ];
    const child = await this.spawnServer(args);
    this.child = child;
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    await this.waitUntilReady(() => stderr);
    return this;
  }

  /**
   * Starts redis-server, through util-linux's `setpriv --pdeathsig` where it exists (Debian,
   * Ubuntu and most Linux): the kernel then sends the server SIGTERM when the process that
   * started it dies, even of SIGKILL, so no private redis-server outlives its Pulse. setpriv
   * execs the server, so the child is the server itself. Elsewhere it starts it directly.
   * The server gets a process group of its own, so a terminal's Ctrl-C (sent to the whole
   * foreground group) reaches Pulse only, and Pulse stops the server after draining its jobs.
   */
  private async spawnServer(args: string[]): Promise<ChildProcess> {
    const ways: [string, string[]][] = [
      ["setpriv", ["--pdeathsig", "TERM", "--", this.bin, ...args]],
      [this.bin, args],
    ];
    for (const [command, commandArgs] of ways) {
      const child = spawn(command, commandArgs, { stdio: ["ignore", "ignore", "pipe"], detached: true });
      const spawned = await new Promise<boolean>((resolve) => {
        child.once("spawn", () => resolve(true));
        child.once("error", () => resolve(false));
      });
      if (spawned) return child;
    }
    throw new RedisUnavailableError(this.bin);
  }

  private async waitUntilReady(stderr: () => string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (this.child?.spawnfile === "setpriv" && this.child.exitCode === SETPRIV_NOT_FOUND)
        throw new RedisUnavailableError(this.bin);
      if (this.child?.exitCode !== null) {
        throw new RedisStartError(`redis-server exited at start: ${stderr().trim() || `code ${this.child?.exitCode}`}`);
      }
      const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on("error", () => {});
      try {
        await client.connect();
        if ((await client.ping()) === "PONG") return;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        client.disconnect();
      }
    }
    throw new Error(`redis-server on port ${this.port} did not answer within 10 s`);
  }

  /** Whether the server process is still running. */
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Ends the server abruptly (SIGKILL), as a crash would; the data directory is kept. */
  async kill(): Promise<void> {
    await this.terminate("SIGKILL");
  }

  /** Freezes the server (SIGSTOP) without ending it: it answers nothing until `resume()`. */
  suspend(): void {
    if (this.running) this.child!.kill("SIGSTOP");
  }

  resume(): void {
    if (this.running) this.child!.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    await this.terminate("SIGTERM");
    if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
  }

  private async terminate(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill(signal);
    });
  }
}

/**
 * The configured Redis (REDIS_URL or REDIS_CLUSTER_NODES) when there is one; otherwise a
 * private redis-server started from PATH, keeping its data in `dataDir` (when given) so
 * queued jobs and event streams survive a restart.
 */
export async function resolveRedis(options: {
  target?: RedisTarget | undefined;
  bin: string;
  port?: number | undefined;
  dataDir?: string;
}): Promise<RedisEndpoint> {
  if (options.target) return { target: options.target, stop: async () => {} };
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  return new PrivateRedisServer({
    bin: options.bin,
    ...(options.port ? { port: options.port } : {}),
    ...(options.dataDir ? { dir: options.dataDir, persist: true } : {}),
  }).start();
}
