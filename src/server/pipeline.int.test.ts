import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compareStreamIds } from "./events/schema";
import { connectClient, eventually, registerTenant, startTestPulse, type TestPulse } from "../test/harness";

type Received = { id: string; data: { type: string } & Record<string, unknown> };

let app: TestPulse;
beforeAll(async () => {
  app = await startTestPulse();
});
afterAll(async () => {
  await app?.close();
});

describe("live pipeline over a real WebSocket", () => {
  it("delivers the setup chain's every event in order with strictly increasing ids", async () => {
    const tenant = await registerTenant(app);
    const client = connectClient(app, tenant.token);
    // Registration started the chain; let it finish so the run below is watched from its start.
    // The writer completes the context file before its own run ends, so wait for the run.
    await eventually(
      () => client.trpc.agent.list.query({ agentRole: "context-file-writer" }),
      (list) => list.runs[0]?.status === "completed",
      "the first setup chain's last run",
    );
    const received: Received[] = [];
    const sub = client.trpc.agent.onStatus.subscribe(
      {},
      {
        onData: (item) => received.push(item as unknown as Received),
      },
    );
    try {
      await eventually(
        () => received.length,
        (n) => n > 0,
        "the snapshot",
      );
      await client.trpc.agent.runChain.mutate();
      await eventually(
        () => received,
        (r) => r.some((e) => e.data.type === "agent:completed" && e.data.agentRole === "context-file-writer"),
        "the context-file-writer to complete",
      );
      expect(received[0]?.data.type).toBe("snapshot");
      for (let i = 1; i < received.length; i++) {
        expect(compareStreamIds(received[i]!.id, received[i - 1]!.id)).toBe(1);
      }
      const lifecycle = received
        .filter((e) => ["agent:queued", "agent:active", "agent:completed"].includes(e.data.type))
        .map((e) => `${e.data.agentRole}:${e.data.type}`);
      expect(lifecycle).toEqual([
        "client-researcher:agent:queued",
        "client-researcher:agent:active",
        "client-researcher:agent:completed",
        "competitor-researcher:agent:queued",
        "competitor-researcher:agent:active",
        "competitor-researcher:agent:completed",
        "context-file-writer:agent:queued",
        "context-file-writer:agent:active",
        "context-file-writer:agent:completed",
      ]);
      const completions = received
        .filter((e) => e.data.type === "agent:completed")
        .map((e) => e.data.nextAgent ?? null);
      expect(completions).toEqual(["competitor-researcher", "context-file-writer", null]);
      expect(received.some((e) => e.data.type === "agent:progress")).toBe(true);
      expect(received.some((e) => e.data.type === "agent:step")).toBe(true);
      expect(received.some((e) => e.data.type === "agent:output")).toBe(true);
      expect(received.some((e) => e.data.type === "agent:log")).toBe(true);
      const context = await client.trpc.context.get.query();
      expect(context?.status).toBe("completed");
      expect(context?.version).toBe(2);
    } finally {
      sub.unsubscribe();
      await client.close();
    }
  });
});
