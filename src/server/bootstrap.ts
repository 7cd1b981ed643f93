import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { demoConfig } from "./agents/demo";
import {
  combineConfigs,
  configFile,
  loadPulseConfig,
  type AgentCatalog,
  type PulseConfig,
} from "./agents/pulse-config";
import { startTenantSetup } from "./agents/tenant-setup";
import { openDatabase, type Database } from "./db";
import type { Env } from "./env";
import type { ServerSecurityOptions } from "./http/server-security";
import { createPulseServer, type PulseServer } from "./http-server";
import type { WebHandler } from "./http/http-routes";
import type { WorkerPoolCloseOptions } from "./agents/worker";
import type { Logger } from "./logger";
import { DEMO_USER } from "./auth/demo-account";
import { Pulse, type PulseOptions } from "./pulse";
import { resolveRedis } from "./private-redis-server";
import { describeRedisTarget, type RedisEndpoint, type RedisTarget } from "./redis";

export { DEMO_USER } from "./auth/demo-account";

/**
 * The HMAC key for session tokens: AUTH_SECRET, or one generated once into `.data/` so
 * sessions survive restarts of a default install. Production deployments set AUTH_SECRET
 * (the same on every replica).
 */
export async function loadAuthSecret(
  env: Pick<Env, "AUTH_SECRET">,
  dataDir: string,
  logger: Logger,
): Promise<Uint8Array> {
  if (env.AUTH_SECRET) return new TextEncoder().encode(env.AUTH_SECRET);
  const file = path.join(dataDir, "auth-secret");
  const secret = (await readSecretFile(file)) ?? (await createSecretFile(file, logger));
  if (secret.length < 32)
    throw new Error(
      `${file} holds no usable session signing key (under 32 characters): delete it to have one generated, or set AUTH_SECRET`,
    );
  return new TextEncoder().encode(secret);
}

const readSecretFile = (file: string) =>
  readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return null;
    throw error;
  });

/**
 * Writes a new key whole under a name of its own, then links it into place: the link fails
 * if the file exists, so processes sharing `.data/` that start together all read the key of
 * whichever linked first, and none ever reads a half-written file.
 */
async function createSecretFile(file: string, logger: Logger): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  const draft = `${file}.${process.pid}.${randomBytes(6).toString("hex")}`;
  await writeFile(draft, randomBytes(32).toString("base64url"), { mode: 0o600 });
  try {
    await link(draft, file);
    logger.info({ file }, "generated a session signing key (set AUTH_SECRET to choose your own)");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    await unlink(draft).catch(() => {});
  }
  return readFile(file, "utf8");
}

/** The Redis the configuration names: a cluster (REDIS_CLUSTER_NODES), one standalone (REDIS_URL), or none (a private one). */
export function configuredRedis(
  env: Pick<
    Env,
    "REDIS_URL" | "REDIS_CLUSTER_NODES" | "REDIS_CLUSTER_TLS" | "REDIS_CLUSTER_USERNAME" | "REDIS_CLUSTER_PASSWORD"
  >,
): RedisTarget | undefined {
  if (env.REDIS_CLUSTER_NODES.length > 0) {
    return {
      cluster: {
        nodes: env.REDIS_CLUSTER_NODES.map((node) => {
          const at = node.lastIndexOf(":");
          return { host: node.slice(0, at), port: Number(node.slice(at + 1)) };
        }),
        tls: env.REDIS_CLUSTER_TLS,
        ...(env.REDIS_CLUSTER_USERNAME ? { username: env.REDIS_CLUSTER_USERNAME } : {}),
        ...(env.REDIS_CLUSTER_PASSWORD ? { password: env.REDIS_CLUSTER_PASSWORD } : {}),
      },
    };
  }
  return env.REDIS_URL ? { url: env.REDIS_URL } : undefined;
}

export interface BootedPulse {
  pulse: Pulse;
  database: Database;
  redis: RedisEndpoint;
  /** Stops everything this boot started, in reverse order. */
  close(options?: WorkerPoolCloseOptions): Promise<void>;
}

/**
 * The agents, external roles and chains this deployment runs: the adopter's module
 * (PULSE_CONFIG, or `pulse.config.ts` in the working directory), the demo's with PULSE_DEMO,
 * and EXTERNAL_AGENT_ROLES; refused in one line when they do not fit together.
 */
export async function loadAgentCatalog(
  env: Pick<Env, "PULSE_CONFIG" | "PULSE_DEMO" | "DEMO_SPEED" | "DEMO_FAILURE_RATE" | "EXTERNAL_AGENT_ROLES">,
  logger: Logger,
  cwd = process.cwd(),
): Promise<AgentCatalog> {
  const configs: PulseConfig[] = [];
  const file = configFile(env.PULSE_CONFIG, cwd);
  if (file) {
    configs.push(await loadPulseConfig(file));
    logger.info({ file }, "loaded the agents' configuration");
  }
  if (env.PULSE_DEMO) configs.push(demoConfig({ speed: env.DEMO_SPEED, failureRate: env.DEMO_FAILURE_RATE }));
  configs.push({ externalAgentRoles: env.EXTERNAL_AGENT_ROLES });
  return combineConfigs(configs);
}

/** Starts Redis (or connects), the database (migrated), and Pulse's services from the configuration. */
export async function bootPulse(
  env: Env,
  logger: Logger,
  role: { workers: boolean; subscriptions: boolean },
): Promise<BootedPulse> {
  const catalog = await loadAgentCatalog(env, logger);
  const dataDir = path.dirname(path.resolve(env.PGLITE_DIR));
  const configured = configuredRedis(env);
  const redis = await resolveRedis({
    target: configured,
    bin: env.REDIS_SERVER_BIN,
    port: env.REDIS_SERVER_PORT || undefined,
    dataDir: path.join(dataDir, "redis"),
  });
  if (!configured)
    logger.info(
      { url: describeRedisTarget(redis.target) },
      "started a private redis-server (set REDIS_URL or REDIS_CLUSTER_NODES to use your own)",
    );
  else logger.info({ redis: describeRedisTarget(redis.target) }, "connecting to Redis");
  let database: Database | undefined;
  try {
    database = await openDatabase({
      databaseUrl: env.DATABASE_URL,
      pgliteDir: env.PGLITE_DIR,
      preparedStatements: env.DATABASE_PREPARED_STATEMENTS,
    });
    logger.info(
      { database: database.kind, ...(database.kind === "pglite" ? { dir: env.PGLITE_DIR } : {}) },
      "database ready, migrations applied",
    );
    const pulse = await Pulse.start(
      await pulseOptions(env, logger, role, { database, redis: redis.target, dataDir, catalog }),
    );
    const db = database;
    return {
      pulse,
      database,
      redis,
      async close(options) {
        await pulse.close(options);
        await db.close();
        await redis.stop();
      },
    };
  } catch (error) {
    await database?.close().catch(() => {});
    await redis.stop();
    throw error;
  }
}

/** Pulse's options from the environment, for a process of the given role. */
async function pulseOptions(
  env: Env,
  logger: Logger,
  role: { workers: boolean; subscriptions: boolean },
  found: { database: Database; redis: RedisTarget; dataDir: string; catalog: AgentCatalog },
): Promise<PulseOptions> {
  return {
    database: found.database,
    redis: found.redis,
    redisPrefix: env.REDIS_PREFIX,
    logger,
    agents: found.catalog.agents,
    chains: found.catalog.chains,
    ...(found.catalog.setupChain ? { setupChain: found.catalog.setupChain } : {}),
    runWorkers: role.workers,
    serveSubscriptions: role.subscriptions,
    retention: {
      maxAgeMs: env.EVENT_RETENTION_HOURS * 3_600_000,
      minEvents: env.EVENT_RETENTION_MIN_EVENTS,
      maxEvents: env.EVENT_RETENTION_MAX_EVENTS,
    },
    logRetentionDays: env.LOG_RETENTION_DAYS,
    worker: {
      concurrency: env.WORKER_CONCURRENCY,
      lockDurationMs: env.WORKER_LOCK_DURATION_MS,
      stalledIntervalMs: env.WORKER_STALLED_INTERVAL_MS,
    },
    attempts: env.WORKER_ATTEMPTS,
    auth: await authOptions(env, found.dataDir, logger),
    externalAgentRoles: found.catalog.externalAgentRoles,
    externalAgentTitles: found.catalog.externalAgentTitles,
    bus: { outputMaxChars: env.RUN_OUTPUT_MAX_CHARS },
    reconcile: {
      intervalMs: env.RECONCILE_INTERVAL_MS,
      graceMs: env.RECONCILE_GRACE_MS,
      externalTimeoutMs: env.EXTERNAL_AGENT_TIMEOUT_SECONDS * 1000,
    },
  };
}

async function authOptions(env: Env, dataDir: string, logger: Logger): Promise<PulseOptions["auth"]> {
  return {
    secret: await loadAuthSecret(env, dataDir, logger),
    sessionTtlSeconds: env.SESSION_TTL_HOURS * 3600,
    socketTokenTtlSeconds: env.SOCKET_TOKEN_TTL_SECONDS,
    reportTokenTtlSeconds: env.REPORT_TOKEN_TTL_HOURS * 3600,
    shareLinkMaxTtlSeconds: env.SHARE_LINK_MAX_HOURS * 3600,
    registration: env.PULSE_REGISTRATION,
    demoAccount: env.PULSE_DEMO_ACCOUNT ?? env.PULSE_DEMO,
    shareViewsPerSecond: env.SHARE_VIEWS_PER_SECOND,
    login: {
      maxPerAccount: env.LOGIN_MAX_ATTEMPTS_PER_ACCOUNT,
      maxPerIp: env.LOGIN_MAX_ATTEMPTS_PER_IP,
      windowSeconds: env.LOGIN_WINDOW_MINUTES * 60,
    },
  };
}

/**
 * The one HTTP server of an API process, configured from the environment and listening on
 * HOST:PORT: what `npm start` serves (and the benchmark measures).
 */
export async function listenPulse(env: Env, pulse: Pulse, logger: Logger, web?: WebHandler): Promise<PulseServer> {
  const http = createPulseServer({
    pulse,
    logger,
    ...(web ? { web } : {}),
    secureCookies: env.COOKIE_SECURE,
    security: serverSecurity(env),
    metrics: {
      enabled: env.METRICS_ENABLED,
      public: env.METRICS_PUBLIC,
      ...(env.METRICS_TOKEN ? { token: env.METRICS_TOKEN } : {}),
    },
    admin: {
      tokenTtlSeconds: env.PULSE_TOKEN_TTL_SECONDS,
      ...(env.PULSE_ADMIN_KEY ? { key: env.PULSE_ADMIN_KEY } : {}),
    },
  });
  await new Promise<void>((resolve, reject) => {
    http.server.once("error", reject);
    http.server.listen({ port: env.PORT, host: env.HOST, backlog: env.LISTEN_BACKLOG }, resolve);
  });
  return http;
}

/** What the HTTP server enforces at the edge, from the configuration. */
export function serverSecurity(env: Env): ServerSecurityOptions {
  return {
    allowedOrigins: env.ALLOWED_ORIGINS,
    trustProxy: env.TRUST_PROXY,
    sessionCheckIntervalMs: env.SESSION_CHECK_INTERVAL_MS,
    reportsPerSecond: env.REPORTS_PER_SECOND,
    maxBodyBytes: env.HTTP_MAX_BODY_BYTES,
    http: {
      maxBatch: env.HTTP_MAX_BATCH_REQUESTS,
      perIpPerSecond: env.HTTP_CALLS_PER_SECOND_PER_IP,
      perTenantPerSecond: env.HTTP_CALLS_PER_SECOND_PER_TENANT,
    },
    ws: {
      maxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES,
      pingMs: env.WS_PING_INTERVAL_MS,
      pongWaitMs: env.WS_PONG_TIMEOUT_MS,
      authTimeoutMs: env.WS_AUTH_TIMEOUT_MS,
      maxSubscriptions: env.WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
      messagesPerSecond: env.WS_MESSAGES_PER_SECOND,
      maxBatch: env.WS_MAX_BATCH_REQUESTS,
      maxRequestIdLength: env.WS_MAX_REQUEST_ID_LENGTH,
      tokenGraceMs: env.WS_TOKEN_GRACE_SECONDS * 1000,
      tokenRefreshLeadMs: env.WS_TOKEN_REFRESH_LEAD_SECONDS * 1000,
      maxBufferedBytes: env.WS_MAX_BUFFERED_BYTES,
      perUser: env.WS_MAX_CONNECTIONS_PER_USER,
      perTenant: env.WS_MAX_CONNECTIONS_PER_TENANT,
      perIp: env.WS_MAX_CONNECTIONS_PER_IP,
      perShareLink: env.WS_MAX_VIEWERS_PER_SHARE_LINK,
      perViewerIp: env.WS_MAX_VIEWERS_PER_IP,
      perProcess: env.WS_MAX_CONNECTIONS,
    },
    sse: {
      perUser: env.SSE_MAX_STREAMS_PER_USER,
      perTenant: env.SSE_MAX_STREAMS_PER_TENANT,
      perIp: env.SSE_MAX_STREAMS_PER_IP,
      perShareLink: env.SSE_MAX_VIEWERS_PER_SHARE_LINK,
      perViewerIp: env.SSE_MAX_VIEWERS_PER_IP,
      perProcess: env.SSE_MAX_STREAMS,
    },
  };
}

/**
 * The demo tenant and user of a default install, created once however many processes start
 * at once; `startPendingSetups` then starts its setup chain.
 */
export async function seedDemo(pulse: Pulse, logger: Logger): Promise<void> {
  const { tenantId, created } = await pulse.services.auth.ensureAccount(DEMO_USER);
  if (created) logger.info({ tenantId }, "created the demo tenant");
}

/**
 * Starts the setup chain of every tenant whose setup never began: a registration or demo
 * seeding cut short (a crash, Redis away) between creating the tenant and queueing its first
 * run. Whether it began is read from the database, so every process may do this at start-up;
 * a deployment without a setup chain has nothing to start and reads nothing.
 */
export async function startPendingSetups(pulse: Pulse, logger: Logger): Promise<void> {
  const { runs } = pulse.services;
  if (!runs.setupChain()) return;
  for (const tenantId of await runs.tenantsAwaitingSetup()) {
    try {
      const started = await startTenantSetup(pulse.services, tenantId);
      if (started) logger.info({ tenantId, chainId: started.chainId }, "started the tenant's setup chain");
    } catch (err) {
      logger.error({ err, tenantId }, "could not start the tenant's setup chain; the next start tries again");
    }
  }
}
