import { TRPCClientError } from "@trpc/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  connectClient,
  createQuietTenant,
  eventually,
  startTestPulse,
  type TestClient,
  type TestPulse,
} from "../../test/harness";
import { defineAgent } from "./define-agent";

/** `defineAgent({ input })`: the input is checked when a run is started, and the agent gets what the schema parsed. */

const received: unknown[] = [];
const summarizer = defineAgent({
  role: "summarizer",
  input: z.object({ text: z.string().min(1), maxWords: z.number().int().positive().default(50) }),
  async run(ctx) {
    // Typed by the schema: a string method and a number, without casts.
    received.push({ words: ctx.input.text.split(" ").length, maxWords: ctx.input.maxWords + 0 });
  },
});

let app: TestPulse;
let client: TestClient;
let tenantId: string;

beforeAll(async () => {
  app = await startTestPulse({ agents: [summarizer] });
  const tenant = await createQuietTenant(app);
  tenantId = tenant.tenantId;
  client = connectClient(app, tenant.token);
});
afterAll(async () => {
  await client?.close();
  await app?.close();
});

describe("an agent's declared input", () => {
  it("refuses a bad value at agent.run with BAD_REQUEST naming the field, and starts nothing", async () => {
    const error = await client.trpc.agent.run
      .mutate({ agentRole: "summarizer", input: { text: 5 } })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<any>).data?.code).toBe("BAD_REQUEST");
    expect((error as Error).message).toMatch(/^input\.text: /);
    const missing = await client.trpc.agent.run
      .mutate({ agentRole: "summarizer", input: {} })
      .catch((e: Error) => e.message);
    expect(missing).toMatch(/^input\.text: /);
    expect(await app.pulse.services.db.agentRun.count({ where: { tenantId } })).toBe(0);
  });

  it("hands the agent what the schema parsed, defaults filled in", async () => {
    const { runId } = await client.trpc.agent.run.mutate({
      agentRole: "summarizer",
      input: { text: "three words here" },
    });
    await eventually(
      () => client.trpc.agent.get.query({ runId }),
      (run) => run.status === "completed",
      "the run completed",
    );
    expect(received).toEqual([{ words: 3, maxWords: 50 }]);
  });
});
