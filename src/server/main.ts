import type { AddressInfo } from "node:net";
import { PulseConfigError } from "./agents/pulse-config";
import { bootPulse, DEMO_USER, listenPulse, seedDemo, startPendingSetups } from "./bootstrap";
import { EnvError, loadEnv, type Env } from "./env";
import { createLogger } from "./logger";
import { RedisUnavailableError } from "./private-redis-server";
import { RedisIncompatibleError } from "./redis";
import { ShutdownSignals } from "./shutdown-signals";
import { createWebHandler, WebBuildMissingError, type WebMode } from "./web/next-handler";
import { createPageCallers, servePagesWith } from "./web/page-caller";

/**
 * `npm start`: the dashboard, tRPC over HTTP and WebSocket on one port, and (unless
 * PULSE_WORKERS=false) the agents' workers, with embedded defaults for everything.
 */
async function main() {
  const env = loadEnv();
  // Next.js and React read NODE_ENV themselves; a local install serves the production build too.
  Object.assign(process.env, { NODE_ENV: env.NODE_ENV ?? "production" });
  const logger = createLogger(env.LOG_LEVEL);
  const drainMs = env.SHUTDOWN_DRAIN_SECONDS * 1000;
  const signals = new ShutdownSignals({
    logger,
    message: "shutting down: telling clients to reconnect, finishing running jobs",
    deadlineMs: drainMs + 15_000,
  });
  const booted = await bootPulse(env, logger, { workers: env.PULSE_WORKERS, subscriptions: true });
  // Stopped while booting: no demo chain to wait for, no port to open.
  if (signals.stopping) return signals.started(({ urgent }) => booted.close({ drainMs, urgent }));
  if (booted.pulse.services.demoAccount) await seedDemo(booted.pulse, logger);
  await startPendingSetups(booted.pulse, logger);
  servePagesWith(createPageCallers(booted.pulse.services));
  const web = env.PULSE_WEB
    ? await createWebHandler({ mode: webMode(env), hostname: env.HOST, port: env.PORT, logger })
    : undefined;
  const http = await listenPulse(env, booted.pulse, logger, web);
  const shown = env.HOST === "0.0.0.0" || env.HOST === "::" ? "localhost" : env.HOST;
  const { port } = http.server.address() as AddressInfo;
  logger.info(
    {
      workers: env.PULSE_WORKERS,
      web: env.PULSE_WEB,
      port,
      metrics: !env.METRICS_ENABLED
        ? false
        : env.METRICS_TOKEN
          ? "/metrics (bearer token)"
          : env.METRICS_PUBLIC
            ? "/metrics"
            : "off (set METRICS_TOKEN or METRICS_PUBLIC)",
    },
    `Pulse is running on http://${shown}:${port}`,
  );
  if (booted.pulse.services.demoAccount) logger.info(`demo login: ${DEMO_USER.email} / ${DEMO_USER.password}`);

  signals.started(async ({ urgent }) => {
    await http.close();
    await booted.close({ drainMs, urgent });
  });
}

/** How the dashboard is served: Next's dev server, a build made beforehand, or one made at start when sources changed. */
function webMode(env: Env): WebMode {
  if (env.NODE_ENV === "development") return "dev";
  return env.NODE_ENV === "production" ? "prebuilt" : "build-if-changed";
}

main().catch((error) => {
  if (
    error instanceof EnvError ||
    error instanceof PulseConfigError ||
    error instanceof RedisUnavailableError ||
    error instanceof RedisIncompatibleError ||
    error instanceof WebBuildMissingError
  ) {
    console.error(error.message);
  } else {
    console.error("Pulse failed to start:", error);
  }
  process.exit(1);
});
