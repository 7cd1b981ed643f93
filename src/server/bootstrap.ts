import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { demoAgents } from "./agents/demo";
import { SETUP_CHAIN } from "./agents/chains";
import { openDatabase, type Database } from "./db";
import type { Env } from "./env";
import type { ServerSecurityOptions } from "./http/server-security";
import { createPulseServer, type PulseServer, type WebHandler } from "./http-server";
import type { Logger } from "./logger";
import { Pulse } from "./pulse";
import { resolveRedis, type RedisEndpoint } from "./redis";

export const DEMO_USER = { email: "demo@pulse.local", password: "pulse-demo", tenantName: "Acme Logistics" } as const;

/**
 * The HMAC key for session tokens: AUTH_SECRET, or one generated once into `.data/` so
 * sessions survive restarts of a default install. Production deployments set AUTH_SECRET
 * (the same on every replica).
 */
async function loadAuthSecret(env: Env, dataDir: string, logger: Logger): Promise<Uint8Array> {
  if (env.AUTH_SECRET) return new TextEncoder().encode(env.AUTH_SECRET);
  const file = path.join(dataDir, "auth-secret");
  let secret = await readFile(file, "utf8").catch(() => "");
  if (secret.length < 32) {
    secret = randomBytes(32).toString("base64url");
    await mkdir(dataDir, { recursive: true });
    await writeFile(file, secret, { mode: 0o600 });
    logger.info({ file }, "generated a session signing key (set AUTH_SECRET to choose your own)");
  }
  return new TextEncoder().encode(secret);
}

export interface BootedPulse {
  pulse: Pulse;
  database: Database;
  redis: RedisEndpoint;
  /** Stops everything this boot started, in reverse order. */
  close(options?: { force?: boolean }): Promise<void>;
}

/** Starts Redis (or connects), the database (migrated), and Pulse's services from the configuration. */
export async function bootPulse(env: Env, logger: Logger, role: { workers: boolean; subscriptions: boolean }): Promise<BootedPulse> {
  const dataDir = path.dirname(path.resolve(env.PGLITE_DIR));
  const redis = await resolveRedis({ url: env.REDIS_URL, bin: env.REDIS_SERVER_BIN, dataDir: path.join(dataDir, "redis") });
  if (!env.REDIS_URL) logger.info({ url: redis.url }, "started a private redis-server (set REDIS_URL to use your own)");
  let database: Database | undefined;
  try {
    database = await openDatabase({ databaseUrl: env.DATABASE_URL, pgliteDir: env.PGLITE_DIR, preparedStatements: env.DATABASE_PREPARED_STATEMENTS });
    logger.info({ database: database.kind, ...(database.kind === "pglite" ? { dir: env.PGLITE_DIR } : {}) }, "database ready, migrations applied");
    const pulse = await Pulse.start({
      database,
      redisUrl: redis.url,
      redisPrefix: env.REDIS_PREFIX,
      logger,
      agents: demoAgents({ speed: env.DEMO_SPEED, failureRate: env.DEMO_FAILURE_RATE }),
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
      auth: {
        secret: await loadAuthSecret(env, dataDir, logger),
        sessionTtlSeconds: env.SESSION_TTL_HOURS * 3600,
        socketTokenTtlSeconds: env.SOCKET_TOKEN_TTL_SECONDS,
        reportTokenTtlSeconds: env.REPORT_TOKEN_TTL_HOURS * 3600,
        shareLinkMaxTtlSeconds: env.SHARE_LINK_MAX_HOURS * 3600,
        login: {
          maxPerAccount: env.LOGIN_MAX_ATTEMPTS_PER_ACCOUNT,
          maxPerIp: env.LOGIN_MAX_ATTEMPTS_PER_IP,
          windowSeconds: env.LOGIN_WINDOW_MINUTES * 60,
        },
      },
      externalAgentRoles: env.EXTERNAL_AGENT_ROLES,
      reconcile: { intervalMs: env.RECONCILE_INTERVAL_MS, graceMs: env.RECONCILE_GRACE_MS },
    });
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
    metrics: { enabled: env.METRICS_ENABLED, public: env.METRICS_PUBLIC, ...(env.METRICS_TOKEN ? { token: env.METRICS_TOKEN } : {}) },
  });
  await new Promise<void>((resolve, reject) => {
    http.server.once("error", reject);
    http.server.listen(env.PORT, env.HOST, resolve);
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
      perProcess: env.WS_MAX_CONNECTIONS,
    },
  };
}

/** The demo tenant and user of a default install; their setup chain runs on first start. */
export async function seedDemo(pulse: Pulse, logger: Logger): Promise<void> {
  const { auth, context, runs } = pulse.services;
  const { session, created } = await auth.ensureUser(DEMO_USER);
  if (created) {
    await context.reset(session.tenantId);
    await runs.startChain(session.tenantId, SETUP_CHAIN, { company: DEMO_USER.tenantName });
    logger.info({ tenantId: session.tenantId }, "created the demo tenant and started its setup chain");
  }
}
