import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../logger";
import { connectRedis } from "../redis";
import { AgentQueues } from "./queue";
import { connectClient, createQuietTenant, eventually, startTestPulse, type TestPulse } from "../../test/harness";
import { RunReconciler } from "./run-reconciler";

/**
 * External agents' heartbeat: any report keeps an active run alive; a run whose agent says
 * nothing for EXTERNAL_AGENT_TIMEOUT_SECONDS fails as "agent stopped reporting".
 */

const ROLE = "outside-agent";
const TIMEOUT_MS = 60_000;
/** Without workers, so no reconciler of its own: the first test drives one with explicit times. */
let app: TestPulse;
/** With workers, whose reconciler checks often with a short timeout. */
let watched: TestPulse;

beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    externalAgentRoles: [ROLE],
    externalAgentTitles: { [ROLE]: "Outside researcher" },
  });
  watched = await startTestPulse({
    externalAgentRoles: [ROLE],
    reconcile: { intervalMs: 100, graceMs: 600_000, externalTimeoutMs: 1_500 },
  });
});
afterAll(async () => {
  await watched?.close();
  await app?.close();
});

async function report(runId: string, token: string, body: Record<string, unknown>, target = app): Promise<number> {
  const res = await fetch(`${target.baseUrl}/api/runs/${runId}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

const row = (id: string, target = app) =>
  target.pulse.services.db.agentRun.findUniqueOrThrow({
    where: { id },
    select: { status: true, error: true, updatedAt: true },
  });

describe("an external role", () => {
  it("is listed among the roles with the title its configuration gave it", async () => {
    const tenant = await createQuietTenant(app);
    const client = connectClient(app, tenant.token);
    try {
      expect(await client.trpc.agent.roles.query()).toContainEqual({
        role: ROLE,
        title: "Outside researcher",
        external: true,
        inChain: false,
        input: [],
      });
    } finally {
      await client.close();
    }
  });
});

describe("an external agent's run", () => {
  it("stays active while any report arrives within the timeout, and fails once its agent is silent past it", async () => {
    const { services } = app.pulse;
    // A reconciler of the test's own, driven with explicit times: no wall clock decides the outcome.
    const queues = new AgentQueues({
      connection: connectRedis(app.redis, `${app.prefix}:test-queues`),
      prefix: app.prefix,
      attempts: 1,
    });
    const reconciler = new RunReconciler(
      { ...services, queues, logger: createLogger("silent"), externalAgentRoles: [ROLE] },
      { intervalMs: 3_600_000, graceMs: 3_600_000, externalTimeoutMs: TIMEOUT_MS },
    );
    const tenant = await createQuietTenant(app);
    const run = await services.runs.start(tenant.tenantId, ROLE);
    expect(await report(run.id, run.reportToken!, { type: "agent:active" })).toBe(202);
    const first = (await row(run.id)).updatedAt.getTime();
    // Queued-to-active is a report; so is a log line, later.
    await eventually(
      () => Date.now(),
      (now) => now > first + 5,
      "the clock to move on",
    );
    expect(await report(run.id, run.reportToken!, { type: "agent:log", level: "info", message: "still working" })).toBe(
      202,
    );
    const heartbeat = (await row(run.id)).updatedAt.getTime();
    expect(heartbeat).toBeGreaterThan(first);
    // Past the timeout counted from the first report, within it counted from the last one.
    await reconciler.reconcile(heartbeat + TIMEOUT_MS - 1);
    expect((await row(run.id)).status).toBe("active");
    await reconciler.reconcile(heartbeat + TIMEOUT_MS + 1);
    const ended = await row(run.id);
    expect(ended.status).toBe("failed");
    expect(ended.error).toMatch(/^agent stopped reporting/);
    // Its agent, back too late, is told the run is over.
    expect(await report(run.id, run.reportToken!, { type: "agent:progress", progress: 50, message: "back" })).toBe(409);
    await queues.close();
  });

  it("fails by itself in a running Pulse with EXTERNAL_AGENT_TIMEOUT_SECONDS short", async () => {
    const tenant = await createQuietTenant(watched);
    const run = await watched.pulse.services.runs.start(tenant.tenantId, ROLE);
    expect(await report(run.id, run.reportToken!, { type: "agent:active" }, watched)).toBe(202);
    const ended = await eventually(
      () => row(run.id, watched),
      (r) => r.status === "failed",
      "the silent run to fail",
    );
    expect(ended.error).toMatch(/^agent stopped reporting/);
  });
});
