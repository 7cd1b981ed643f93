import type { AddressInfo } from "node:net";
import { bootPulse, listenPulse } from "../../src/server/bootstrap";
import { loadEnv } from "../../src/server/env";
import { createLogger } from "../../src/server/logger";
import { pulsePublisher } from "../event-publishers";
import { answerRequests } from "../ipc";
import { OpenLoopSteps, runClosedLoop, type LoadStep, type PublishOne, type ThroughputRun } from "../open-loop";
import { benchEvent, isProgressEvent, nowUs, type BenchTenant } from "../workload";
import { createBenchTenants, type TenantSpec } from "./pulse-tenants";
import { connectionDropper, exitSoon, diagnosticRequests, serverStats } from "./server-stats";

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
const dropConnections = connectionDropper(http.server);
const publisher = pulsePublisher(services.bus);
let publish: PublishOne | undefined;
const steps = new OpenLoopSteps();

answerRequests({
  ...diagnosticRequests(),
  init: () => ({ port }),
  setup: (spec: TenantSpec) => createBenchTenants(services, spec),
  stats: (options: { gc?: boolean }) => serverStats(() => http.connections.size, options),
  "drop-connections": () => dropConnections(),
  async target(payload: { tenants: BenchTenant[] }) {
    publish = await publisher.forTenants(payload.tenants);
    return {};
  },
  step: (payload: { step: LoadStep; timeoutMs: number }) => steps.run(payload.step, must(publish), payload.timeoutMs),
  "end-step": () => steps.end(),
  throughput: (payload: { run: ThroughputRun }) => runClosedLoop(payload.run, must(publish)),
  "progress-cost": (payload: { tenants: BenchTenant[]; eventsPerRun: number; rounds: number }) => progressCost(payload),
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

/**
 * The CPU this process spends per progress event it publishes through `EventBus.publish`
 * (the path of every agent's `ctx.progress`), each run's events one after another and the
 * runs in parallel, as workers publish them. Measured after a warm-up round of the same size,
 * so the figure is the steady state rather than the JIT's first pass; the cheapest of
 * `rounds` rounds, since other work on the machine only ever adds to a round's cost.
 */
async function progressCost(options: { tenants: BenchTenant[]; eventsPerRun: number; rounds: number }) {
  const { tenants, eventsPerRun } = options;
  const runs = tenants.flatMap((t) => t.runs);
  let seq = 0;
  const nextProgressSeq = () => {
    do seq++;
    while (!isProgressEvent(seq));
    return seq;
  };
  const round = async () => {
    let published = 0;
    await Promise.all(
      runs.map(async (run) => {
        for (let i = 0; i < eventsPerRun; i++) {
          if ((await services.bus.publish(benchEvent(nextProgressSeq(), run, nowUs()))) !== null) published++;
        }
      }),
    );
    return published;
  };
  await round();
  let published = 0;
  let cpuUsPerEvent = Number.POSITIVE_INFINITY;
  for (let r = 0; r < options.rounds; r++) {
    const start = process.cpuUsage();
    const count = await round();
    const cpu = process.cpuUsage(start);
    published += count;
    if (count > 0) cpuUsPerEvent = Math.min(cpuUsPerEvent, (cpu.user + cpu.system) / count);
  }
  return { published, cpuUsPerEvent };
}
