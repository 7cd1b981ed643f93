import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AgentRemote,
  connectClient,
  createQuietTenant,
  eventually,
  startTestPulse,
  type TestClient,
  type TestPulse,
} from "../../../test/harness";

/**
 * Polling one run's events on a busy tenant: a page never comes back empty while a later
 * page within the scan budget matches, and past the budget it says `more` so the caller asks
 * again at once.
 */

const busy = new AgentRemote("busy-agent");
const quiet = new AgentRemote("quiet-agent");
let app: TestPulse;
let client: TestClient;

beforeAll(async () => {
  app = await startTestPulse({ agents: [busy.definition, quiet.definition] });
  client = connectClient(app, (await createQuietTenant(app)).token);
});
afterAll(async () => {
  busy.finish();
  quiet.finish();
  await client?.close();
  await app?.close();
});

describe("agent.events filtered by run", () => {
  it("reads past other runs' events to the run's own, or says there is more", async () => {
    const { cursor: start } = await client.trpc.agent.events.query({});
    const noisy = await client.trpc.agent.run.mutate({ agentRole: busy.role });
    busy.tick(40);
    await eventually(
      () => client.trpc.agent.get.query({ runId: noisy.runId }),
      (r) => r.progress === 40,
      "40 progress events of the busy run",
    );
    const { runId } = await client.trpc.agent.run.mutate({ agentRole: quiet.role });

    // About 43 entries of the busy run come first: five pages of 5 reach the quiet run's event in one call.
    const found = await client.trpc.agent.events.query({ runId, cursor: start, limit: 5 });
    expect(found.items[0]!.item).toMatchObject({ type: "agent:queued", runId });

    // With pages of 2, ten pages are not enough: the answer is empty but says `more`, and the caller continues at once.
    const first = await client.trpc.agent.events.query({ runId, cursor: start, limit: 2 });
    expect(first.items).toEqual([]);
    expect(first.more).toBe(true);
    let page = first;
    const seen: string[] = [];
    for (let calls = 0; page.more && seen.length === 0 && calls < 10; calls++) {
      page = await client.trpc.agent.events.query({ runId, cursor: page.cursor, limit: 2 });
      seen.push(...page.items.map((i) => i.id));
    }
    expect(seen[0]).toBe(found.items[0]!.id);
  });
});
