import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  startTestPulse,
  type TestPulse,
} from "../../test/harness";
import { createLogger } from "../logger";
import { attemptFields } from "./attempt-fields";
import { LostAttempts } from "./lost-attempts";

/**
 * An attempt whose worker vanished, reported by another process. The worker may have died
 * between writing its last event to the database (which counted it) and appending it to the
 * stream: its subscribers must then resync, never see the run's counter skip.
 */

const ROLE = "vanishing-agent";
let app: TestPulse;

beforeAll(async () => {
  // An external role: its run is made active by a publish here, and no worker holds it.
  app = await startTestPulse({ externalAgentRoles: [ROLE] });
});
afterAll(async () => {
  await app?.close();
});

/** An active run of the tenant, followed by a subscribed client from its snapshot on. */
async function followedActiveRun() {
  const tenant = await createQuietTenant(app);
  const { db, bus, runs } = app.pulse.services;
  const started = await runs.start(tenant.tenantId, ROLE);
  const row = await db.agentRun.findUniqueOrThrow({ where: { id: started.id } });
  await bus.publish({ ...attemptFields(row, 1), type: "agent:active", startedAt: new Date().toISOString() });
  await bus.publish({ ...attemptFields(row, 1), type: "agent:log", level: "info", message: "working" });
  const client = connectClient(app, tenant.token);
  const seen = collect((handlers) => client.trpc.agent.onStatus.subscribe({ runId: started.id }, handlers));
  await eventually(
    () => seen.items.length,
    (n) => n > 0,
    "the snapshot",
  );
  return { runId: started.id, client, seen };
}

const lostAttempts = () =>
  new LostAttempts(
    { db: app.pulse.services.db, bus: app.pulse.services.bus, queues: { get: () => undefined as never } },
    ROLE,
    createLogger("silent"),
  );

describe("an attempt whose worker vanished", () => {
  it("is reported as an event when the worker's last event reached the stream", async () => {
    const { runId, client, seen } = await followedActiveRun();
    try {
      await lostAttempts().report(runId, "current", true);
      const items = await eventually(
        () => seen.items.map((item) => item.data),
        (list) => list.some((d) => d.type === "agent:failed"),
        "the failed attempt",
      );
      expect(items.map((d) => d.type)).toEqual(["snapshot", "agent:failed"]);
    } finally {
      seen.unsubscribe();
      await client.close();
    }
  });

  it("makes its subscribers resync when the worker died between counting its last event and appending it", async () => {
    const { runId, client, seen } = await followedActiveRun();
    try {
      // What the dead worker left: an event the database counted, the stream never received.
      await app.pulse.services.db.agentRun.update({ where: { id: runId }, data: { seq: { increment: 1 } } });
      await lostAttempts().report(runId, "current", true);
      const items = await eventually(
        () => seen.items.map((item) => item.data),
        (list) => list.length > 1,
        "what the report brings",
      );
      expect(items.map((d) => d.type)).toEqual(["snapshot", "resync"]);
      const resync = items[1] as unknown as { snapshot: { runs: { id: string; status: string; seq: number }[] } };
      const run = await app.pulse.services.db.agentRun.findUniqueOrThrow({ where: { id: runId } });
      expect(resync.snapshot.runs.find((r) => r.id === runId)).toMatchObject({ status: run.status, seq: run.seq });
    } finally {
      seen.unsubscribe();
      await client.close();
    }
  });
});
