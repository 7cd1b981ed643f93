import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Redis, type RedisOptions } from "ioredis";

/** A Redis to talk to, and how to let go of it. */
export interface RedisEndpoint {
  url: string;
  /** Stops the private server, if this endpoint started one; a no-op otherwise. */
  stop(): Promise<void>;
}

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

export interface PrivateRedisOptions {
  bin?: string;
  port?: number;
  /** Keep data on disk (append-only file) in `dir`; off by default, as the stream is a cache of recent events. */
  persist?: boolean;
  dir?: string;
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

  async start(): Promise<this> {
    this.port = this.options.port ?? (await freePort());
    if (this.options.dir) {
      this.dir = this.options.dir;
    } else {
      this.dir = await mkdtemp(path.join(os.tmpdir(), "pulse-redis-"));
      this.ownsDir = true;
    }
    const args = [
      "--port", String(this.port),
      "--bind", "127.0.0.1",
      "--dir", this.dir,
      "--save", "",
      "--appendonly", this.options.persist ? "yes" : "no",
      "--appendfsync", "everysec",
      "--protected-mode", "yes",
      "--loglevel", "warning",
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
      if (this.child?.spawnfile === "setpriv" && this.child.exitCode === SETPRIV_NOT_FOUND) throw new RedisUnavailableError(this.bin);
      if (this.child?.exitCode !== null) {
        throw new Error(`redis-server exited at start: ${stderr().trim() || `code ${this.child?.exitCode}`}`);
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

  /** Ends the server abruptly (SIGKILL), as a crash would; the data directory is kept. */
  async kill(): Promise<void> {
    await this.terminate("SIGKILL");
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
 * REDIS_URL when set; otherwise a private redis-server started from PATH, keeping its data
 * in `dataDir` (when given) so queued jobs and event streams survive a restart.
 */
export async function resolveRedis(options: { url?: string; bin: string; port?: number | undefined; dataDir?: string }): Promise<RedisEndpoint> {
  if (options.url) return { url: options.url, stop: async () => {} };
  if (options.dataDir) await mkdir(options.dataDir, { recursive: true });
  return new PrivateRedisServer({
    bin: options.bin,
    ...(options.port ? { port: options.port } : {}),
    ...(options.dataDir ? { dir: options.dataDir, persist: true } : {}),
  }).start();
}

/**
 * Options every Pulse connection shares. Commands wait for a reconnect rather than fail
 * after a few retries, so a Redis restart delays work instead of losing it.
 *
 * @see https://docs.bullmq.io/guide/going-to-production#maxretriesperrequest
 */
export function redisOptions(extra: RedisOptions = {}): RedisOptions {
  return {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2_000),
    ...extra,
  };
}

export function connectRedis(url: string, name: string, extra: RedisOptions = {}): Redis {
  return new Redis(url, redisOptions({ connectionName: name, ...extra }));
}

/**
 * Makes the commands a connection sends in one turn of the event loop leave in one socket
 * write: the first command of a turn corks the socket, and the socket is uncorked once the
 * turn's synchronous code (or microtasks) has run. Nothing waits for an answer, unlike
 * ioredis's auto-pipelining (which sends one batch at a time per connection): a lone command
 * still goes out in the same turn, and a burst (a worker's concurrent publishes, the
 * continuations of one batch of database writes) costs one system call instead of one each.
 *
 * @see https://nodejs.org/api/stream.html#writablecork
 */
export function writeOncePerTurn(redis: Redis): Redis {
  const send = redis.sendCommand.bind(redis);
  let corked = false;
  redis.sendCommand = (command, stream) => {
    const socket = redis.stream;
    if (!corked && redis.status === "ready" && socket) {
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork();
      });
    }
    return send(command, stream);
  };
  return redis;
}
