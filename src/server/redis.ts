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
