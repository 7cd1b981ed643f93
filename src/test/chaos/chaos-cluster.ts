import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { DEMO_SETUP_CHAIN, demoAgents } from "../../server/agents/demo";
import { openDatabase, type Database } from "../../server/db";
import { createLogger } from "../../server/logger";
import { Pulse } from "../../server/pulse";
import { PrivateRedisCluster } from "../../server/private-redis-cluster";
import { connectRedis, type RedisClient, type RedisTarget } from "../../server/redis";
import { FEED_ROLES } from "./feed-publisher";
import { PulseChild } from "./pulse-child";
import { RestartableRedis } from "./restartable-redis";
import { TcpBalancer } from "./tcp-balancer";

export interface ChaosClusterOptions {
  /** Short name, part of the Redis prefix and the database name. */
  name: string;
  /** PostgreSQL to create the cluster's database on (`inject("databaseUrl")`); must be on loopback. */
  adminDatabaseUrl: string;
  /** One redis-server that can be restarted (the default), or a Redis Cluster of its own whose masters can be killed. */
  redis?: "standalone" | "cluster";
  /** Keep Redis's data in an append-only file (survives a graceful restart); standalone only. */
  persistRedis?: boolean;
  /** The cluster's `cluster-node-timeout`: how long a killed master goes unnoticed before its replica takes over. */
  nodeTimeoutMs?: number;
  /** Extra environment for every child process (e.g. WORKER_STALLED_INTERVAL_MS). */
  env?: Record<string, string>;
}

/** Limits that a browser fleet behind one balancer address would otherwise hit (every client is 127.0.0.1 here). */
const FLEET_LIMITS = {
  WS_MAX_CONNECTIONS_PER_IP: "100000",
  WS_MAX_CONNECTIONS_PER_USER: "100000",
  WS_MAX_CONNECTIONS_PER_TENANT: "1000000",
  WS_MESSAGES_PER_SECOND: "10000",
  HTTP_CALLS_PER_SECOND_PER_IP: "100000",
  HTTP_CALLS_PER_SECOND_PER_TENANT: "100000",
};

/**
 * Pulse as a deployment runs it, on loopback: API replicas (`npm start`) behind a TCP
 * balancer, worker processes (`npm run worker`), one Redis that can be restarted (or a Redis
 * Cluster whose masters can be killed), and one
 * PostgreSQL database that every process, the test's own publisher included, reaches
 * through a TCP proxy the test can cut (a database outage) and restore. The test process
 * also runs a Pulse without workers or subscriptions: it publishes events and signs tokens
 * like any other process of the deployment.
 */
export class ChaosCluster {
  readonly replicas: PulseChild[] = [];
  readonly workers: PulseChild[] = [];
  readonly balancer = new TcpBalancer();
  readonly prefix: string;
  readonly secret = randomBytes(32).toString("hex");
  /** The Redis Cluster, when the cluster runs on one (`redis: "cluster"`). */
  redisCluster?: PrivateRedisCluster;
  private standalone?: RestartableRedis;
  dbProxy!: TcpBalancer;
  database!: Database;
  publisher!: Pulse;
  /** A connection of the test's own, for reading streams and queues (a cluster client on a cluster). */
  inspector!: RedisClient;
  private databaseName = "";
  private databaseUrl = "";
  private children = 0;

  private constructor(private readonly options: ChaosClusterOptions) {
    this.prefix = `chaos-${options.name}-${randomUUID().slice(0, 6)}`.slice(0, 32);
  }

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const cluster = new ChaosCluster(options);
    try {
      await cluster.boot();
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** Where clients connect: the balancer in front of the replicas. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.balancer.port}/api/trpc`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.balancer.port}`;
  }

  /** The standalone Redis, for scenarios that restart it. */
  get redis(): RestartableRedis {
    if (!this.standalone) throw new Error("this chaos cluster runs on a Redis Cluster: use redisCluster");
    return this.standalone;
  }

  /** Where every process of the deployment finds Redis. */
  get redisTarget(): RedisTarget {
    return this.redisCluster ? this.redisCluster.target : { url: this.redis.url };
  }

  get liveReplicas(): PulseChild[] {
    return this.replicas.filter((r) => r.running);
  }

  get liveWorkers(): PulseChild[] {
    return this.workers.filter((w) => w.running);
  }

  private async boot(): Promise<void> {
    const admin = new URL(this.options.adminDatabaseUrl);
    if (!["127.0.0.1", "localhost", "[::1]"].includes(admin.hostname)) {
      throw new Error(`the chaos suite talks to loopback only; DATABASE_URL points at ${admin.hostname}`);
    }
    this.databaseName = `pulse_chaos_${randomUUID().replace(/-/g, "").slice(0, 16)}`;
    const client = new pg.Client({ connectionString: this.options.adminDatabaseUrl });
    await client.connect();
    await client.query(`CREATE DATABASE ${this.databaseName}`);
    await client.end();
    this.dbProxy = await new TcpBalancer({ backends: [Number(admin.port || 5432)] }).start();
    const proxied = new URL(this.options.adminDatabaseUrl);
    proxied.hostname = "127.0.0.1";
    proxied.port = String(this.dbProxy.port);
    proxied.pathname = `/${this.databaseName}`;
    this.databaseUrl = proxied.toString();

    if (this.options.redis === "cluster") {
      this.redisCluster = await new PrivateRedisCluster({ nodeTimeoutMs: this.options.nodeTimeoutMs ?? 1_500 }).start();
    } else {
      this.standalone = await new RestartableRedis(this.options.persistRedis ?? false).start();
    }
    this.inspector = connectRedis(this.redisTarget, "chaos-inspector", { redis: { retryStrategy: () => 100 } });
    this.inspector.on("error", () => {});
    await this.balancer.start();
    // Migrates the database before any child starts, so they find it ready.
    this.database = await openDatabase({ databaseUrl: this.databaseUrl, pgliteDir: "" });
    this.publisher = await Pulse.start({
      database: this.database,
      redis: this.redisTarget,
      redisPrefix: this.prefix,
      logger: createLogger(process.env.TEST_LOG_LEVEL ?? "silent"),
      // The demo agents' roles, so runs of them can be started here; the workers elsewhere run them.
      agents: demoAgents({ speed: 1, failureRate: 0 }),
      chains: [DEMO_SETUP_CHAIN],
      setupChain: DEMO_SETUP_CHAIN.name,
      runWorkers: false,
      serveSubscriptions: false,
      retention: { maxAgeMs: 86_400_000, minEvents: 10_000, maxEvents: 1_000_000 },
      logRetentionDays: 30,
      worker: { concurrency: 1, lockDurationMs: 30_000, stalledIntervalMs: 30_000 },
      attempts: 3,
      auth: {
        secret: new TextEncoder().encode(this.secret),
        sessionTtlSeconds: 24 * 3600,
        login: { maxPerIp: 1_000_000 },
      },
      externalAgentRoles: [...FEED_ROLES],
    });
  }

  /** The environment every child shares: one Redis (or cluster), one database (through the proxy), one secret. */
  private childEnv(extra: Record<string, string>): Record<string, string> {
    return {
      HOST: "127.0.0.1",
      PORT: "0",
      ...(this.redisCluster ? { REDIS_CLUSTER_NODES: this.redisCluster.nodesList } : { REDIS_URL: this.redis.url }),
      DATABASE_URL: this.databaseUrl,
      REDIS_PREFIX: this.prefix,
      AUTH_SECRET: this.secret,
      PULSE_WEB: "false",
      PULSE_WORKERS: "false",
      // The demo agents (workers run them), without the demo account.
      PULSE_DEMO: "true",
      PULSE_DEMO_ACCOUNT: "false",
      DEMO_FAILURE_RATE: "0",
      LOG_LEVEL: "info",
      EXTERNAL_AGENT_ROLES: FEED_ROLES.join(","),
      ...FLEET_LIMITS,
      ...this.options.env,
      ...extra,
    };
  }

  /** Starts an API replica and puts it behind the balancer. */
  async addReplica(env: Record<string, string> = {}): Promise<PulseChild> {
    const replica = new PulseChild("api", `replica-${++this.children}`, this.childEnv(env));
    this.replicas.push(replica);
    await replica.start();
    this.balancer.add(replica.port);
    return replica;
  }

  /** Starts a worker process running the demo agents. */
  async addWorker(env: Record<string, string> = {}): Promise<PulseChild> {
    const worker = new PulseChild("worker", `worker-${++this.children}`, this.childEnv(env));
    this.workers.push(worker);
    await worker.start();
    return worker;
  }

  /**
   * Ends a replica: a crash (SIGKILL, the balancer notices when connections fail) or a
   * drain (SIGTERM, taken out of the balancer first, as a deployment deregisters it).
   */
  async stopReplica(replica: PulseChild, signal: "SIGKILL" | "SIGTERM") {
    this.balancer.remove(replica.port);
    return replica.stop(signal);
  }

  /** A user of a new tenant and a session token for it, signed like any replica would sign it. */
  async createTenant(name = `tenant-${randomUUID().slice(0, 6)}`) {
    const { auth } = this.publisher.services;
    const session = await auth.register({
      email: `${name}@chaos.test`,
      password: "correct horse battery",
      tenantName: name,
    });
    return { tenantId: session.tenantId, token: await auth.issueSessionToken(session), session };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.replicas, ...this.workers].filter((c) => c.running).map((c) => c.kill()));
    await this.balancer.close().catch(() => {});
    this.dbProxy?.restore();
    await this.publisher?.close({ force: true }).catch(() => {});
    await this.database?.close().catch(() => {});
    this.inspector?.disconnect();
    await this.standalone?.stop().catch(() => {});
    await this.redisCluster?.stop().catch(() => {});
    await this.dbProxy?.close().catch(() => {});
    if (this.databaseName) {
      const client = new pg.Client({ connectionString: this.options.adminDatabaseUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${this.databaseName} WITH (FORCE)`);
      await client.end();
    }
  }
}
