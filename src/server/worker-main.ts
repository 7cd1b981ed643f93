import { bootPulse, configuredRedis } from "./bootstrap";
import { PulseConfigError } from "./agents/pulse-config";
import { EnvError, loadEnv } from "./env";
import { createLogger } from "./logger";
import { startMetricsServer, type MetricsServer } from "./metrics/metrics-server";
import { RedisUnavailableError } from "./private-redis-server";
import { RedisIncompatibleError } from "./redis";
import { ShutdownSignals } from "./shutdown-signals";

/**
 * `npm run worker`: agent workers only, for deployments that scale workers apart from API
 * processes. Several processes must share one Redis and one database, so this needs
 * REDIS_URL (or REDIS_CLUSTER_NODES) and DATABASE_URL (the embedded defaults belong to a single process).
 */
async function main() {
  const env = loadEnv();
  const logger = createLogger(env.LOG_LEVEL, "pulse-worker");
  if (!configuredRedis(env) || !env.DATABASE_URL) {
    console.error(
      "npm run worker shares Redis and the database with the API processes: set REDIS_URL (or REDIS_CLUSTER_NODES) and DATABASE_URL (see .env.example).",
    );
    process.exit(1);
  }
  const drainMs = env.SHUTDOWN_DRAIN_SECONDS * 1000;
  const signals = new ShutdownSignals({
    logger,
    message: "shutting down: finishing running jobs",
    deadlineMs: drainMs + 15_000,
  });
  const booted = await bootPulse(env, logger, { workers: true, subscriptions: false });
  let metricsServer: MetricsServer | undefined;
  if (env.METRICS_PORT !== undefined) {
    try {
      metricsServer = await startMetricsServer({
        metrics: booted.pulse.services.metrics,
        health: booted.pulse.health,
        port: env.METRICS_PORT,
        host: env.HOST,
        enabled: env.METRICS_ENABLED,
        logger,
        ...(env.METRICS_TOKEN ? { token: env.METRICS_TOKEN } : {}),
      });
    } catch (error) {
      await booted.close({ force: true });
      throw new Error(`METRICS_PORT: cannot listen on ${env.HOST}:${env.METRICS_PORT} (${(error as Error).message})`, {
        cause: error,
      });
    }
  }
  logger.info(
    {
      roles: booted.pulse.services.agents.map((a) => a.role),
      ...(metricsServer ? { metricsPort: metricsServer.port } : {}),
    },
    "workers running",
  );
  signals.started(async ({ urgent }) => {
    await metricsServer?.close();
    await booted.close({ drainMs, urgent });
  });
}

main().catch((error) => {
  console.error(
    error instanceof EnvError ||
      error instanceof PulseConfigError ||
      error instanceof RedisUnavailableError ||
      error instanceof RedisIncompatibleError
      ? error.message
      : error,
  );
  process.exit(1);
});
