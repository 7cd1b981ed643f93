import { TRPCClientError } from "@trpc/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import config from "../../../examples/pulse.config";
import {
  AgentRemote,
  connectClient,
  createQuietTenant,
  eventually,
  startTestPulse,
  type TestPulse,
} from "../../test/harness";

/** Named chains from an adopter's configuration: listed, started by name, each role after the one before. */

let app: TestPulse;
/** A chain whose first role ends when the test says: "slow" (gatherer, then filer). */
const gatherer = new AgentRemote("gatherer");
const filer = new AgentRemote("filer");

beforeAll(async () => {
  app = await startTestPulse({
    agents: [...config.agents!, gatherer.definition, filer.definition],
    chains: [...config.chains!, { name: "slow", roles: [gatherer.role, filer.role] }],
    setupChain: null,
  });
});
afterAll(async () => {
  await app?.close();
});

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => "started",
    (error: unknown) =>
      error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code : String(error),
  );

describe("a deployment's own chains", () => {
  it("are listed, and one named by agent.runChain runs its roles in order with the input it was given", async () => {
    const tenant = await createQuietTenant(app);
    const client = connectClient(app, tenant.token);
    try {
      // No setup chain configured: a new tenant starts with nothing.
      expect(await client.trpc.agent.list.query({})).toMatchObject({ runs: [] });
      expect((await client.trpc.agent.chains.query())[0]).toEqual({
        name: "digest",
        title: "Digest",
        roles: ["summarizer", "reviewer"],
        setup: false,
      });

      const input = {
        documentId: "doc-7",
        text: "Pulse shows runs live. Nothing is lost. Tenants never see each other.",
      };
      const started = await client.trpc.agent.runChain.mutate({ chain: "digest", input });
      expect(started).toMatchObject({ run: { agentRole: "summarizer" }, chainId: expect.any(String) });

      const runs = await eventually(
        () =>
          app.pulse.services.db.agentRun.findMany({
            where: { tenantId: tenant.tenantId },
            orderBy: { queuedAt: "asc" },
          }),
        (rows) => rows.length === 2 && rows.every((r) => r.status === "completed"),
        "the digest chain to complete",
      );
      // Each run keeps its chain's name, the second one too (started by the worker when the first completed).
      expect(started.run.chainName).toBe("digest");
      expect(runs.map((r) => [r.agentRole, r.chainId, r.chainName, r.input])).toEqual([
        // The summarizer keeps its input as its schema parsed it, defaults filled in; the
        // reviewer gets the document the summarizer parsed, its own schema's fields of it.
        ["summarizer", started.chainId, "digest", { ...input, keep: 2, style: "prose", quoted: false }],
        ["reviewer", started.chainId, "digest", input],
      ]);
      expect((await client.trpc.agent.latestChain.query()).map((r) => r.chainName)).toEqual(["digest", "digest"]);
      // The digest chain does not write the context file: starting it marked none pending.
      expect(await client.trpc.context.get.query()).toBeNull();
    } finally {
      await client.close();
    }
  });

  it("refuses a chain the deployment lacks (NOT_FOUND), a call naming none when there is no setup chain, and bad input for its first role", async () => {
    const tenant = await createQuietTenant(app);
    const client = connectClient(app, tenant.token);
    try {
      expect(await codeOf(client.trpc.agent.runChain.mutate({ chain: "setup" }))).toBe("NOT_FOUND");
      expect(await codeOf(client.trpc.agent.runChain.mutate())).toBe("BAD_REQUEST");
      expect(await codeOf(client.trpc.agent.runChain.mutate({ chain: "digest", input: { documentId: "doc-8" } }))).toBe(
        "BAD_REQUEST",
      );
      expect(await app.pulse.services.db.agentRun.count({ where: { tenantId: tenant.tenantId } })).toBe(0);
    } finally {
      await client.close();
    }
  });

  it("agent.latestChain is the chain started last, though an older chain running beside it queued a run since", async () => {
    const tenant = await createQuietTenant(app);
    const client = connectClient(app, tenant.token);
    try {
      const older = await client.trpc.agent.runChain.mutate({ chain: "slow" });
      const input = { documentId: "doc-9", text: "Two chains at once. One card." };
      const newer = await client.trpc.agent.runChain.mutate({ chain: "digest", input });
      // The older chain's next role is queued after the newer chain started.
      gatherer.finish();
      filer.finish();
      await eventually(
        () => client.trpc.agent.list.query({ agentRole: filer.role }),
        (page) => page.runs.some((r) => r.chainId === older.chainId),
        "the older chain's second run",
      );
      const latest = await client.trpc.agent.latestChain.query();
      expect(new Set(latest.map((r) => r.chainId))).toEqual(new Set([newer.chainId]));
      expect(latest[0]!.chainName).toBe("digest");
    } finally {
      await client.close();
    }
  });
});
