import type { ChainDefinition } from "./agents/chains";
import { agentTitle, roleConcurrency, type AnyAgentDefinition } from "./agents/define-agent";
import { ExternalReportService } from "./agents/external-report-service";
import { AgentQueues } from "./agents/queue";
import { RunReconciler, type RunReconcilerOptions } from "./agents/run-reconciler";
import { RunService } from "./agents/run-service";
import { AgentWorkerPool, type AgentWorkerOptions, type WorkerPoolCloseOptions } from "./agents/worker";
import { WorkerBackoff } from "./agents/worker-backoff";
import { AuthService, type AuthOptions } from "./auth/auth-service";
import { LoginThrottle, type LoginThrottleOptions } from "./auth/login-throttle";
import { ProductAccounts } from "./auth/product-accounts";
import { RevocationChannel } from "./auth/revocation-channel";
import { ShareLinkService } from "./auth/share-link-service";
import { ContextService } from "./context/context-service";
import type { Database, PrismaClient } from "./db";
import type { SqlClient } from "./sql";
import { EventBus, type EventBusOptions } from "./events/bus";
import { TenantEventStream, TenantStreamKeys, type RetentionOptions } from "./events/event-stream";
import { TenantStreamReader } from "./events/stream-reader";
import type { Logger } from "./logger";
import { HealthCheck } from "./metrics/health-check";
import { PulseMetrics } from "./metrics/pulse-metrics";
import {
  checkRedisServer,
  connectRedis,
  writeOncePerTurn,
  type ConnectOptions,
  type RedisClient,
  type RedisTarget,
} from "./redis";
import { RepeatedErrorLog } from "./repeated-error-log";

export interface PulseOptions {
  database: Database;
  /** The Redis every connection of this process goes to: one standalone, or a cluster. */
  redis: RedisTarget;
  /** Namespace of every Redis key, BullMQ's included. */
  redisPrefix: string;
  logger: Logger;
  agents: readonly AnyAgentDefinition[];
  /** Named chains of roles (`agent.runChain({ chain })`). */
  chains?: readonly ChainDefinition[];
  /** The chain every new tenant starts with, by name (none: tenants start with nothing). */
  setupChain?: string;
  /** Run the agents' BullMQ workers in this process. */
  runWorkers: boolean;
  /** Read tenants' streams for subscribers in this process (API processes do; worker-only ones need not). */
  serveSubscriptions: boolean;
  retention: RetentionOptions;
  logRetentionDays: number;
  worker: Omit<AgentWorkerOptions, "connection" | "prefix">;
  attempts: number;
  auth: AuthOptions & {
    /** Longest lifetime of a share link. */
    shareLinkMaxTtlSeconds?: number;
    /** Whether `auth.register` creates tenants (default true). */
    registration?: boolean;
    /** Whether this deployment has the demo account, whose sign-in the sign-in page shows (default false). */
    demoAccount?: boolean;
    /** Views of the shared run one link's viewers may have per second together (see `ShareLinkOptions`). */
    shareViewsPerSecond?: number;
    login?: Partial<LoginThrottleOptions>;
  };
  /** Roles whose agents run outside Pulse and report over HTTP with their run's token. */
  externalAgentRoles?: readonly string[];
  /** The titles the dashboard shows for external roles, by role (default: the role). */
  externalAgentTitles?: Readonly<Record<string, string>>;
  /** How long publishes wait for an unreachable database, and how often progress is written. */
  bus?: Pick<EventBusOptions, "databaseWaitMs" | "progressFlushMs" | "outputMaxChars">;
  /** This instance's metrics (default: a fresh set with its own registry). */
  metrics?: PulseMetrics;
  /** How worker processes look for runs the queue forgot (default: every minute, after a minute). */
  reconcile?: RunReconcilerOptions;
}

/** Ten tries per account and a hundred per address every 15 minutes, unless configured. */
export const DEFAULT_LOGIN_LIMITS: LoginThrottleOptions = { maxPerAccount: 10, maxPerIp: 100, windowSeconds: 900 };

/** Everything procedures and agents reach through `ctx.services`. */
export interface PulseServices {
  db: PrismaClient;
  /** The same database, for the statements of the hot paths (events, snapshots): see `SqlClient`. */
  sql: SqlClient;
  bus: EventBus;
  stream: TenantEventStream;
  /** Created on first use, so worker-only processes never open its two connections. */
  readonly reader: TenantStreamReader;
  runs: RunService;
  context: ContextService;
  auth: AuthService;
  shares: ShareLinkService;
  /** A product's tenants and users by its own ids, and the tokens minted for them (admin API). */
  accounts: ProductAccounts;
  /** Whether `auth.register` may create tenants (PULSE_REGISTRATION). */
  registrationOpen: boolean;
  /** Whether the demo account exists (PULSE_DEMO_ACCOUNT, default PULSE_DEMO), so the sign-in page may offer it. */
  demoAccount: boolean;
  /** Logouts, removed users and stopped share links, told to every process's open connections. */
  revocations: RevocationChannel;
  loginThrottle: LoginThrottle;
  /** Turns external agents' HTTP reports into events. */
  reports: ExternalReportService;
  agents: readonly AnyAgentDefinition[];
  externalAgentRoles: readonly string[];
  externalAgentTitles: Readonly<Record<string, string>>;
  sessionTtlSeconds: number;
  logger: Logger;
  /** What `/metrics` reports for this instance. */
  metrics: PulseMetrics;
}

/**
 * The composition root: builds Pulse's services from their settings, owns every long-lived
 * resource (Redis connections, stream reader, queues, workers, sweeps) and closes them in
 * reverse order. HTTP and WebSocket serving sit on top of it (see `http-server.ts`).
 */
export class Pulse {
  private readonly connections = new Map<string, RedisClient>();
  /** Connection errors repeat for as long as Redis is away: each is logged once per interval with a count. */
  private readonly connectionErrors: RepeatedErrorLog;
  private streamReader?: TenantStreamReader;
  private workers?: AgentWorkerPool;
  /** Each role's worker's recent errors, which pause it and which the health check reports. */
  private readonly workerBackoffs: WorkerBackoff[] = [];
  private reconciler?: RunReconciler;
  private sweep?: NodeJS.Timeout;
  readonly services: PulseServices;
  /** What `/healthz` reports: whether this process can use Redis and the database. */
  readonly health: HealthCheck;
  private readonly queues: AgentQueues;

  private constructor(private readonly options: PulseOptions) {
    const { logger, redisPrefix } = options;
    this.connectionErrors = new RepeatedErrorLog(logger, { level: "warn" });
    // Each command goes out in the turn it was sent, a turn's commands in one write. ioredis's
    // auto-pipelining sends one pipeline at a time per connection, so every append waited for
    // the previous batch's answer, and the waiting commands outlived young-generation
    // collections: a worker published fewer progress events a second, each costing more CPU
    // and longer scavenges (figures in docs/BENCHMARK.md; the budget test keeps the CPU cost).
    const command = writeOncePerTurn(this.connect("command"));
    const stream = new TenantEventStream(command, new TenantStreamKeys(redisPrefix), options.retention);
    this.queues = new AgentQueues({
      connection: this.connect("queues"),
      prefix: redisPrefix,
      attempts: options.attempts,
      logger,
    });
    this.services = this.createServices(command, stream, options.metrics ?? new PulseMetrics());
    this.health = new HealthCheck({
      redis: command,
      probeKey: `${redisPrefix}:health-probe`,
      connections: () => [...this.connections].map(([name, connection]) => ({ name, status: connection.status })),
      database: options.database.sql,
      failures: () => this.workerFailureReasons(),
      logger,
    });
  }

  /** Every service the procedures, the workers and the HTTP edge use, sharing one command connection. */
  private createServices(command: RedisClient, stream: TenantEventStream, metrics: PulseMetrics): PulseServices {
    const { options } = this;
    const { logger } = options;
    const db = options.database.prisma;
    const bus = new EventBus({
      db,
      sql: options.database.sql,
      stream,
      logger,
      ...options.bus,
      onPublished: (event) => metrics.eventPublished(event.type),
    });
    const readerFor = (): TenantStreamReader =>
      (this.streamReader ??= new TenantStreamReader({
        readRedis: this.connect("stream-reader"),
        wakeRedis: this.connect("stream-wake", { shardedSubscriber: true }),
        controlRedis: command,
        stream,
        logger,
        metrics,
      }));
    const { revocations, auth, shares } = this.createAuth(command);
    const externalAgentRoles = options.externalAgentRoles ?? [];
    return {
      db,
      sql: options.database.sql,
      bus,
      stream,
      get reader() {
        return readerFor();
      },
      runs: this.createRuns(bus, command, auth),
      context: new ContextService({ db, bus }),
      auth,
      shares,
      accounts: new ProductAccounts(db, auth, shares, { minTtlSeconds: 60, maxTtlSeconds: 86_400 }),
      registrationOpen: options.auth.registration ?? true,
      demoAccount: options.auth.demoAccount ?? false,
      revocations,
      loginThrottle: new LoginThrottle(command, options.redisPrefix, {
        ...DEFAULT_LOGIN_LIMITS,
        ...options.auth.login,
      }),
      reports: new ExternalReportService({ db, bus, externalRoles: externalAgentRoles }),
      agents: options.agents,
      externalAgentRoles,
      externalAgentTitles: options.externalAgentTitles ?? {},
      sessionTtlSeconds: options.auth.sessionTtlSeconds,
      logger,
      metrics,
    };
  }

  /** Sessions, share links and the channel that revokes them on every process. */
  private createAuth(command: RedisClient) {
    const { options } = this;
    const { prisma: db, sql } = options.database;
    // Its subscriber connection opens only where an HTTP server listens for revocations.
    const revocations = new RevocationChannel({
      publisher: command,
      subscriber: () => this.connect("revocations"),
      channel: `${options.redisPrefix}:revoked`,
      logger: options.logger,
    });
    const auth = new AuthService({ db, sql }, options.auth, revocations);
    const shares = new ShareLinkService(
      db,
      auth.tokens,
      {
        maxTtlSeconds: options.auth.shareLinkMaxTtlSeconds ?? 7 * 86_400,
        viewsPerSecond: options.auth.shareViewsPerSecond,
      },
      revocations,
    );
    return { revocations, auth, shares };
  }

  /** Starting, cancelling and listing runs, under each role's input schema and concurrency. */
  private createRuns(bus: EventBus, command: RedisClient, auth: AuthService): RunService {
    const { options } = this;
    const agent = (role: string) => options.agents.find((a) => a.role === role);
    return new RunService({
      db: options.database.prisma,
      sql: options.database.sql,
      bus,
      queues: this.queues,
      redis: command,
      prefix: options.redisPrefix,
      roles: () => options.agents.map((a) => a.role),
      inputSchema: (role) => agent(role)?.input,
      concurrency: (role) => roleConcurrency(agent(role)),
      roleTitle: (role) => agentTitle(options.agents, role),
      externalRoles: options.externalAgentRoles ?? [],
      ...(options.chains ? { chains: options.chains } : {}),
      ...(options.setupChain ? { setupChain: options.setupChain } : {}),
      issueReportToken: (grant) => auth.issueReportToken(grant),
    });
  }

  static async start(options: PulseOptions): Promise<Pulse> {
    const pulse = new Pulse(options);
    try {
      await checkRedisServer(pulse.connections.get("command")!);
    } catch (error) {
      await pulse.close({ force: true });
      throw error;
    }
    if (options.serveSubscriptions) pulse.services.reader.start();
    if (options.runWorkers) {
      // Named members, not a spread of the services: a spread would read (and so create) the stream reader.
      const { db, bus, runs, context, logger } = pulse.services;
      const deps = { db, bus, runs, context, logger, queues: pulse.queues };
      pulse.workers = await AgentWorkerPool.start(
        options.agents,
        { ...deps, subscriber: pulse.connect("cancel-subscriber") },
        { ...options.worker, connection: pulse.connect("workers"), prefix: options.redisPrefix },
      );
      pulse.watchWorkers(pulse.workers);
      pulse.reconciler = new RunReconciler(
        { ...deps, externalAgentRoles: pulse.services.externalAgentRoles },
        options.reconcile ?? { intervalMs: 60_000, graceMs: 60_000 },
      );
      pulse.reconciler.start();
    }
    pulse.sweep = setInterval(() => void pulse.sweepOldLogs(), 3_600_000).unref();
    void pulse.sweepOldLogs();
    return pulse;
  }

  /**
   * Deletes run logs past their retention (30 days by default), and long-expired sessions and
   * share links. On PGlite, which has no autovacuum, it also refreshes the planner's
   * statistics of the runs table: without them the runs page sorts a tenant's whole history
   * instead of reading its index.
   */
  async sweepOldLogs(now = Date.now()): Promise<number> {
    const before = new Date(now - this.options.logRetentionDays * 86_400_000);
    try {
      const { count } = await this.services.db.runLog.deleteMany({ where: { at: { lt: before } } });
      await this.services.auth.sweepExpired(now);
      if (this.options.database.kind === "pglite") await this.services.db.$executeRawUnsafe(`ANALYZE "AgentRun"`);
      return count;
    } catch (err) {
      this.options.logger.warn({ err }, "log retention sweep failed");
      return 0;
    }
  }

  /** Backs off each worker whose Redis keeps refusing its commands. */
  private watchWorkers(pool: AgentWorkerPool): void {
    for (const [role, worker] of pool.byRole)
      this.workerBackoffs.push(new WorkerBackoff(role, worker, this.options.logger));
  }

  private workerFailureReasons(): string[] {
    return this.workerBackoffs.flatMap((backoff) => backoff.reason() ?? []);
  }

  private connect(name: string, options: ConnectOptions = {}): RedisClient {
    const connection = connectRedis(this.options.redis, `${this.options.redisPrefix}:${name}`, options);
    connection.on("error", (err: unknown) =>
      this.connectionErrors.report(err, "redis connection error", { connection: name }),
    );
    // A cluster client reports each node's connection errors apart from its own.
    connection.on("node error", (err: unknown, node: string) =>
      this.connectionErrors.report(err, "redis node connection error", { connection: name, node }),
    );
    this.connections.set(name, connection);
    return connection;
  }

  /** Stops workers (letting running jobs finish or handing them back, unless forced), the reader, queues, then Redis. */
  async close(options: WorkerPoolCloseOptions = {}): Promise<void> {
    if (this.sweep) clearInterval(this.sweep);
    await this.reconciler?.stop();
    for (const backoff of this.workerBackoffs) backoff.stop();
    await this.workers?.close(options);
    await this.services.bus.close();
    await this.streamReader?.stop();
    await this.queues.close();
    await Promise.all([...this.connections.values()].map((c) => c.quit().catch(() => c.disconnect())));
    this.connectionErrors.close();
  }
}
