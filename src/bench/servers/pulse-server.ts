import type { AddressInfo } from "node:net";
import { bootPulse, listenPulse } from "../../server/bootstrap";
import { loadEnv } from "../../server/env";
import { createLogger } from "../../server/logger";
import { pulsePublisher } from "../event-publishers";
import { answerRequests } from "../ipc";
import { runClosedLoop, runOpenLoop, type LoadStep, type PublishOne, type ThroughputRun } from "../open-loop";
import type { BenchTenant } from "../workload";
import { createBenchTenants, type TenantSpec } from "./pulse-tenants";
import { exitSoon, diagnosticRequests, serverStats } from "./server-stats";

/**
 * Pulse as it ships, composed the way `npm start` does (src/server/main.ts) with the web
 * and the workers off: configuration from the environment, `bootPulse`, `createPulseServer`.
 * The orchestrator raises only the caps a bench must lift (connections per tenant, user and
 * address, messages per second) through the same environment variables an operator would.
 * It also creates the scenario's tenants, and, when no PostgreSQL is reachable (PGlite is
 * one process's), publishes in-process.
 */
const env = loadEnv();
const logger = createLogger(env.LOG_LEVEL, "pulse-bench");
const booted = await bootPulse(env, logger, { workers: env.PULSE_WORKERS, subscriptions: true });
const http = await listenPulse(env, booted.pulse, logger);
const { port } = http.server.address() as AddressInfo;
const services = booted.pulse.services;
const publisher = pulsePublisher(services.bus);
let publish: PublishOne | undefined;

answerRequests({
  ...diagnosticRequests(),
  init: () => ({ port }),
  setup: (spec: TenantSpec) => createBenchTenants(services, spec),
  stats: (options: { gc?: boolean }) => serverStats(() => http.connections.size, options),
  async target(payload: { tenants: BenchTenant[] }) {
    publish = await publisher.forTenants(payload.tenants);
    return {};
  },
  step: (payload: { step: LoadStep; timeoutMs: number }) => runOpenLoop(payload.step, must(publish), payload.timeoutMs),
  throughput: (payload: { run: ThroughputRun }) => runClosedLoop(payload.run, must(publish)),
  async stop() {
    await http.close();
    await booted.close({ force: true });
    exitSoon();
  },
});

function must(value: PublishOne | undefined): PublishOne {
  if (!value) throw new Error("pulse server: no tenants to publish for (send target first)");
  return value;
}
