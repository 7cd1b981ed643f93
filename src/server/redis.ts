import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Cluster, Redis, ReplyError, type ClusterOptions, type RedisOptions } from "ioredis";

/** One standalone Redis (or one a proxy makes look like one), by its `redis://` or `rediss://` URL. */
export interface StandaloneRedisTarget {
  url: string;
}

/** A Redis Cluster, by a few of its nodes (the client learns the rest from them). */
export interface ClusterRedisTarget {
  cluster: {
    nodes: readonly { host: string; port: number }[];
    /** Talk TLS to every node (a managed cluster-mode service usually requires it). */
    tls?: boolean;
    username?: string;
    password?: string;
  };
}

/** Where Pulse's Redis is: every process of a deployment is given the same one. */
export type RedisTarget = StandaloneRedisTarget | ClusterRedisTarget;

/** A connection to either kind of target: the commands Pulse sends are the same on both. */
export type RedisClient = Redis | Cluster;

export const isClusterTarget = (target: RedisTarget): target is ClusterRedisTarget => "cluster" in target;

/** The target as a log line may show it: nodes or URL, never a password. */
export function describeRedisTarget(target: RedisTarget): string {
  if (isClusterTarget(target))
    return `cluster ${target.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(",")}${target.cluster.tls ? " (TLS)" : ""}`;
  return target.url.replace(/(\/\/[^/:@\s]*):[^@/\s]*@/, "$1:***@");
}

/** A Redis to talk to, and how to let go of it. */
export interface RedisEndpoint {
  target: RedisTarget;
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

export interface ConnectOptions {
  /** Options of each connection to a node (on a cluster, of each node's connection). */
  redis?: RedisOptions;
  /**
   * The connection will SSUBSCRIBE: on a cluster, it then keeps one subscriber connection per
   * master, so each sharded channel is subscribed on the node that holds its slot. A
   * standalone connection SSUBSCRIBEs as it is.
   *
   * @see https://redis.io/docs/latest/develop/interact/pubsub/#sharded-pubsub
   */
  shardedSubscriber?: boolean;
}

/**
 * Opens a connection to `target` named `name` (shown by CLIENT LIST on every node). A URL
 * string is a standalone target, as tests and tools write it.
 */
export function connectRedis(target: StandaloneRedisTarget | string, name: string, options?: ConnectOptions): Redis;
export function connectRedis(target: RedisTarget | string, name: string, options?: ConnectOptions): RedisClient;
export function connectRedis(target: RedisTarget | string, name: string, options: ConnectOptions = {}): RedisClient {
  const resolved = typeof target === "string" ? { url: target } : target;
  if (!isClusterTarget(resolved))
    return new Redis(resolved.url, redisOptions({ connectionName: name, ...options.redis }));
  return new Cluster([...resolved.cluster.nodes], clusterOptions(resolved, name, options));
}

/**
 * A cluster client's options: each node's connection as `redisOptions` has it, the cluster
 * reconnecting by itself, and the slot map refreshed often enough that a failover is noticed
 * within seconds. A node that drops is not reconnected (ioredis's default): commands queued
 * on a reconnecting node would wait for a master that is gone instead of following the slot
 * to its promoted replica.
 *
 * @see https://github.com/redis/ioredis#cluster
 */
function clusterOptions(target: ClusterRedisTarget, name: string, options: ConnectOptions): ClusterOptions {
  const { tls, username, password } = target.cluster;
  const { retryStrategy: _perNode, ...node } = redisOptions({ connectionName: name, ...options.redis });
  return {
    redisOptions: {
      ...node,
      ...(tls ? { tls: {} } : {}),
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
    },
    enableReadyCheck: true,
    clusterRetryStrategy: (times) => Math.min(100 * 2 ** times, 2_000),
    slotsRefreshInterval: 2_000,
    // A failover leaves the cluster down for its slots for a moment: commands wait and retry.
    retryDelayOnClusterDown: 300,
    retryDelayOnFailover: 300,
    retryDelayOnTryAgain: 300,
    // Each retry counts as a redirection: ioredis's 16 give up after ~5 s, before a failover of
    // a production cluster-node-timeout (15 s by default) is over, and an event already written
    // to the database would then never reach the stream. 100 wait about 30 s.
    maxRedirections: 100,
    ...(options.shardedSubscriber ? { shardedSubscribers: true } : {}),
  };
}

/** Replies of a cluster (or a server) that will serve the command again shortly. */
const TRANSIENT_REPLY = /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY)\b/;

/**
 * True when a command failed because Redis could not serve it for now (its connection went,
 * a cluster's slot had no master for longer than the client waits) rather than because
 * Redis refused it, so the caller may wait and send it again.
 */
export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return error instanceof (ReplyError as typeof Error) ? TRANSIENT_REPLY.test(error.message) : true;
}

/** The Redis version Pulse needs: sharded pub/sub (SPUBLISH, SSUBSCRIBE) came in 7.0. */
export const MINIMUM_REDIS_VERSION = "7.0.0";

/** Redis refused what Pulse needs at start: the message is the one line to show. */
export class RedisIncompatibleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RedisIncompatibleError";
  }
}

/** One field of an INFO answer (`field:value` lines). */
export function infoField(info: string, field: string): string | undefined {
  const match = new RegExp(`^${field}:(.*)$`, "m").exec(info);
  return match?.[1]?.trim();
}

/** True when `version` (major.minor.patch) is below `minimum`. */
export function versionBelow(version: string, minimum: string): boolean {
  const parts = (v: string) => v.split(".").map((n) => Number.parseInt(n, 10) || 0);
  const [a, b] = [parts(version), parts(minimum)];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  }
  return false;
}

/**
 * Why one server's INFO (`server` and `cluster` sections) makes it unusable for Pulse, or
 * null. A standalone client pointed at a cluster node would be answered MOVED for most keys.
 */
export function serverProblem(info: string, where: string, asCluster: boolean): string | null {
  const version = infoField(info, "redis_version");
  if (version === undefined)
    return `${where} did not report its version (INFO server): Pulse needs Redis ${MINIMUM_REDIS_VERSION} or newer`;
  if (versionBelow(version, MINIMUM_REDIS_VERSION))
    return `${where} runs Redis ${version}: Pulse needs Redis ${MINIMUM_REDIS_VERSION} or newer`;
  const clusterEnabled = infoField(info, "cluster_enabled") === "1";
  if (!asCluster && clusterEnabled)
    return `REDIS_URL points at a Redis Cluster node (${where}); set REDIS_CLUSTER_NODES to the cluster's nodes instead`;
  if (asCluster && !clusterEnabled)
    return `REDIS_CLUSTER_NODES lists ${where}, which is not in cluster mode; set REDIS_URL for a standalone Redis`;
  return null;
}

/**
 * Waits until the cluster client has loaded the slot map (and so knows the masters). A seed
 * node that is not in cluster mode refuses CLUSTER SLOTS, and the client would retry it for
 * ever: that refusal ends the wait with its one-line reason.
 */
function clusterReady(redis: Cluster): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = () => {
      redis.off("ready", ready);
      redis.off("node error", refused);
    };
    const ready = () => {
      done();
      resolve();
    };
    const refused = (err: unknown, node: string) => {
      // ioredis's reply errors are not always `instanceof Error` here: read the message alone.
      if (!String((err as { message?: unknown } | undefined)?.message ?? err).includes("cluster support disabled"))
        return;
      done();
      reject(
        new RedisIncompatibleError(
          `REDIS_CLUSTER_NODES lists ${node}, which is not in cluster mode; set REDIS_URL for a standalone Redis`,
        ),
      );
    };
    redis.on("ready", ready);
    redis.on("node error", refused);
  });
}

const serverInfo = async (redis: Redis) => `${await redis.info("server")}\n${await redis.info("cluster")}`;

/**
 * Checks, once at start, that Pulse can work with the Redis it is connected to: version 7
 * or newer on every master of a cluster, and the kind of Redis the configuration says.
 * Throws `RedisIncompatibleError` with a one-line message otherwise.
 */
export async function checkRedisServer(redis: RedisClient): Promise<void> {
  if (!(redis instanceof Cluster)) {
    const problem = serverProblem(await serverInfo(redis), `${redis.options.host}:${redis.options.port}`, false);
    if (problem) throw new RedisIncompatibleError(problem);
    return;
  }
  if (redis.status !== "ready") await clusterReady(redis);
  for (const node of redis.nodes("master")) {
    const problem = serverProblem(await serverInfo(node), `${node.options.host}:${node.options.port}`, true);
    if (problem) throw new RedisIncompatibleError(problem);
  }
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
export function writeOncePerTurn<T extends RedisClient>(redis: T): T {
  // A cluster client writes to one socket per node, each its own connection's: the turn's
  // commands are spread over them, and ioredis offers no hook short of each node's client.
  // The saving is per socket write and stays out of cluster mode rather than patching
  // connections ioredis creates and replaces on failover.
  if (redis instanceof Cluster) return redis;
  corkEachTurn(redis as Redis);
  return redis;
}

function corkEachTurn(redis: Redis): void {
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
}
