import { bootPulse, type BootedPulse } from "../src/server/bootstrap";
import { loadEnv } from "../src/server/env";
import { createLogger } from "../src/server/logger";
import { CpuProfiler } from "./cpu-profiler";
import { competitorPublisher, pulsePublisher, type EventPublisher } from "./event-publishers";
import { answerRequests } from "./ipc";
import { OpenLoopSteps, runClosedLoop, type LoadStep, type PublishOne, type ThroughputRun } from "./open-loop";
import { exitSoon } from "./servers/server-stats";
import type { BenchTenant, Design, SocketIoAdapter, SocketIoPublish } from "./workload";

/**
 * A worker process of the bench: publishes designs' events on the open-loop schedule the
 * orchestrator asks for, one step at a time. Pulse's events go through the real
 * `EventBus.publish` of a worker-only Pulse (booted from the environment like `npm run
 * worker`, without BullMQ workers), so validation, the database projection and the XADD
 * all happen here, as in production; Pulse gets a process of its own.
 */
const publishers = new Map<Design, { publisher: EventPublisher; publish?: PublishOne }>();
let booted: BootedPulse | undefined;
const profiler = new CpuProfiler();
const steps = new OpenLoopSteps();

function target(design: Design): PublishOne {
  const publish = publishers.get(design)?.publish;
  if (!publish) throw new Error(`publisher: no ${design} tenants to publish for (send init and target first)`);
  return publish;
}

answerRequests({
  "profile-start": () => profiler.start(),
  "profile-stop": (payload: { file: string }) => profiler.stop(payload.file),
  async init(init: {
    design: Design;
    redisUrl: string;
    socketIoPublish: SocketIoPublish;
    socketIoAdapter: SocketIoAdapter;
    databaseUrl: string | null;
  }) {
    // A design initialised again (Socket.IO moving to another adapter) gives up its previous way.
    await publishers.get(init.design)?.publisher.close();
    if (init.design === "pulse") {
      const env = loadEnv();
      booted = await bootPulse(env, createLogger(env.LOG_LEVEL, "bench-publisher"), {
        workers: false,
        subscriptions: false,
      });
      publishers.set("pulse", { publisher: pulsePublisher(booted.pulse.services.bus) });
    } else {
      publishers.set(init.design, {
        publisher: competitorPublisher(
          init.design,
          init.redisUrl,
          init.socketIoPublish,
          init.databaseUrl,
          init.socketIoAdapter,
        ),
      });
    }
    return {};
  },
  async target(payload: { design: Design; tenants: BenchTenant[] }) {
    const entry = publishers.get(payload.design);
    if (!entry) throw new Error(`publisher: ${payload.design} was not initialised`);
    entry.publish = await entry.publisher.forTenants(payload.tenants);
    return {};
  },
  step: (payload: { design: Design; step: LoadStep; timeoutMs: number }) =>
    steps.run(payload.step, target(payload.design), payload.timeoutMs),
  "end-step": () => steps.end(),
  throughput: (payload: { design: Design; run: ThroughputRun }) => runClosedLoop(payload.run, target(payload.design)),
  async stop() {
    for (const { publisher } of publishers.values()) await publisher.close();
    await booted?.close({ force: true });
    exitSoon();
  },
});
