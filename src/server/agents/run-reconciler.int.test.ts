import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Worker } from "bullmq";
import { TEXT_LIMITS } from "../events/schema";
import { createLogger } from "../logger";
import { AgentQueues } from "./queue";
import { RunReconciler } from "./run-reconciler";
import { connectRedis } from "../redis";
import { createQuietTenant, eventually, startTestPulse, type TestPulse } from "../../test/harness";

/** Long enough that a busy machine's pause between starting a run and reconciling stays within it. */
const GRACE_MS = 10 * 60_000;

let app: TestPulse;
let queues: AgentQueues;
let reconciler: RunReconciler;
beforeAll(async () => {
  // No workers: the runs below stay queued, as they would with every worker down.
  app = await startTestPulse({ runWorkers: false, externalAgentRoles: ["outside-agent"] });
  queues = new AgentQueues({
    connection: connectRedis(app.redis, `${app.prefix}:test-queues`),
    prefix: app.prefix,
    attempts: 1,
  });
  reconciler = new RunReconciler(
    { ...app.pulse.services, queues, logger: createLogger("silent") },
    { intervalMs: 60_000, graceMs: GRACE_MS },
  );
});
afterAll(async () => {
  await queues.close();
  await app.close();
});

describe("RunReconciler", () => {
  it("fails a run whose job the queue lost, and leaves one whose job still waits", async () => {
    const tenant = await createQuietTenant(app);
    const { runs, db } = app.pulse.services;
    const lost = await runs.start(tenant.tenantId, "client-researcher");
    const waiting = await runs.start(tenant.tenantId, "competitor-researcher");
    // As after a Redis restart without persistence: the job is gone, the database remembers.
    await (await queues.get("client-researcher").getJob(lost.jobId))!.remove();

    expect(await reconciler.reconcile(Date.now())).toBe(0); // within the grace period
    expect(await reconciler.reconcile(Date.now() + 2 * GRACE_MS)).toBe(1);

    const ended = await db.agentRun.findUniqueOrThrow({ where: { id: lost.id } });
    expect(ended).toMatchObject({ status: "failed", willRetry: false });
    expect(ended.error).toMatch(/lost from the queue/);
    expect((await db.agentRun.findUniqueOrThrow({ where: { id: waiting.id } })).status).toBe("queued");
    // The failure reached the stream, so every dashboard shows it.
    const entries = await app.pulse.services.stream.readAfter(tenant.tenantId, "0-0", 100);
    expect(entries.map((e) => e.event.type)).toContain("agent:failed");
    // A second pass finds nothing more to do.
    expect(await reconciler.reconcile(Date.now() + 2 * GRACE_MS)).toBe(0);
  });

  it("fails a run the queue failed outside its agent, its reason cut to fit however long", async () => {
    const tenant = await createQuietTenant(app);
    const { runs, db } = app.pulse.services;
    const run = await runs.start(tenant.tenantId, "context-file-writer");
    // A bare BullMQ worker, not Pulse's: it fails the job without reporting anything.
    const queue = queues.get("context-file-writer");
    const bare = new Worker(queue.name, () => Promise.reject(new Error(`upstream said: ${"x".repeat(5_000)}`)), {
      connection: connectRedis(app.redis, `${app.prefix}:bare-worker`),
      prefix: queue.opts.prefix,
    });
    try {
      await eventually(
        async () => (await queue.getJob(run.jobId))?.getState(),
        (state) => state === "failed",
        "the job to fail",
      );
    } finally {
      await bare.close();
    }
    expect(await reconciler.reconcile(Date.now() + 2 * GRACE_MS)).toBe(1);
    const ended = await db.agentRun.findUniqueOrThrow({ where: { id: run.id } });
    expect(ended).toMatchObject({ status: "failed", willRetry: false });
    expect(ended.error).toMatch(/^the queue failed this run: upstream said: x+…$/);
    expect(ended.error).toHaveLength(TEXT_LIMITS.error);
  });

  it("leaves runs of external agents alone: they have no job to lose, and may be quiet for long", async () => {
    const tenant = await createQuietTenant(app);
    const { runs, db } = app.pulse.services;
    const outside = await runs.start(tenant.tenantId, "outside-agent");
    expect(await reconciler.reconcile(Date.now() + 2 * GRACE_MS)).toBe(0);
    expect((await db.agentRun.findUniqueOrThrow({ where: { id: outside.id } })).status).toBe("queued");
  });
});
