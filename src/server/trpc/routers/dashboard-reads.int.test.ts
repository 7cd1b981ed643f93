import { createTRPCClient, httpBatchLink } from "@trpc/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, registerTenant, startTestPulse, type TestPulse } from "../../../test/harness";
import { TRPC_PATH } from "../../http-server";
import type { AppRouter } from "../root";

/** What the dashboard reads beside the live feed: a run's share links, and the newest chain. */

let app: TestPulse;
beforeAll(async () => {
  app = await startTestPulse();
});
afterAll(async () => {
  await app?.close();
});

const api = (token: string) =>
  createTRPCClient<AppRouter>({
    links: [httpBatchLink({ url: `${app.baseUrl}${TRPC_PATH}`, headers: { authorization: `Bearer ${token}` } })],
  });

describe("dashboard reads", () => {
  it("agent.latestChain is the newest chain's runs, whatever ran by hand since", async () => {
    const tenant = await registerTenant(app);
    const client = api(tenant.token);
    const chain = await eventually(
      () => client.agent.latestChain.query(),
      (runs) => runs.length === 3 && runs.every((r) => r.status === "completed"),
      "the setup chain",
    );
    for (let i = 0; i < 2; i++) {
      const { runId } = await client.agent.run.mutate({ agentRole: "client-researcher" });
      await eventually(
        () => client.agent.get.query({ runId }),
        (r) => r.status === "completed",
        "a run by hand",
      );
    }
    expect((await client.agent.latestChain.query()).map((r) => r.id)).toEqual(chain.map((r) => r.id));
    expect(new Set(chain.map((r) => r.chainId)).size).toBe(1);
    // Another tenant's newest chain is its own.
    const other = await registerTenant(app);
    const theirs = await eventually(
      () => api(other.token).agent.latestChain.query(),
      (runs) => runs.length > 0,
      "the other chain",
    );
    expect(theirs.some((r) => chain.some((c) => c.id === r.id))).toBe(false);
  });

  it("share.list gives a run's working links with who made each, without tokens, and none of another tenant's", async () => {
    const tenant = await registerTenant(app);
    const client = api(tenant.token);
    const runId = (
      await eventually(
        () => client.agent.list.query({ limit: 1 }),
        (l) => l.runs.length > 0,
        "a run",
      )
    ).runs[0]!.id;
    const first = await client.share.create.mutate({ runId, expiresInMinutes: 60 });
    const second = await client.share.create.mutate({ runId, expiresInMinutes: 120 });
    const links = await client.share.list.query({ runId });
    expect(links.map((l) => l.shareId)).toEqual([second.shareId, first.shareId]);
    expect(links[0]).toEqual({
      shareId: second.shareId,
      createdBy: tenant.email,
      createdAt: expect.any(String),
      expiresAt: second.expiresAt,
    });
    expect(JSON.stringify(links)).not.toContain(first.token);

    await client.share.revoke.mutate({ shareId: first.shareId });
    expect((await client.share.list.query({ runId })).map((l) => l.shareId)).toEqual([second.shareId]);
    const intruder = await registerTenant(app);
    expect(await api(intruder.token).share.list.query({ runId })).toEqual([]);
  });
});
