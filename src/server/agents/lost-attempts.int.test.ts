import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, followedActiveRun, startTestPulse, type TestPulse } from "../../test/harness";
import { createLogger } from "../logger";
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

const lostAttempts = () =>
  new LostAttempts(
    { db: app.pulse.services.db, bus: app.pulse.services.bus, queues: { get: () => undefined as never } },
    ROLE,
    createLogger("silent"),
  );

describe("an attempt whose worker vanished", () => {
  it("is reported as an event when the worker's last event reached the stream", async () => {
    const { runId, client, seen } = await followedActiveRun(app, ROLE);
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
    const { runId, client, seen } = await followedActiveRun(app, ROLE);
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
