import { randomUUID } from "node:crypto";
import { TRPCClientError } from "@trpc/client";
import { describe, expect, it } from "vitest";
import {
  AgentRemote,
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  fastDemoAgents,
  isTick,
  registerTenant,
  useTickerPulse,
  type Collector,
  type TestClient,
  type TestPulse,
} from "../../../test/harness";

/**
 * Guarantee 5 of DESIGN.md: the tenant comes only from the verified token; no procedure lets
 * one tenant read, subscribe to, or change another tenant's data, and another tenant's run
 * id is answered exactly like one that does not exist.
 */

const ticker = new AgentRemote("ticker");

let app: TestPulse;
/** Clients and subscriptions a test opens, closed after it. */
const open = useTickerPulse(ticker, { agents: [...fastDemoAgents(), ticker.definition] }, (started) => (app = started));
const { clients, collectors } = open;

function client(token: string): TestClient {
  const c = connectClient(app, token);
  clients.push(c);
  return c;
}

function track(collector: Collector): Collector {
  collectors.push(collector);
  return collector;
}

/** The tRPC error a call failed with, or a failure when it succeeded. */
async function failure(call: Promise<unknown>): Promise<TRPCClientError<any>> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(TRPCClientError);
    return error as TRPCClientError<any>;
  }
  throw new Error("expected the call to fail");
}

describe("tenant isolation (guarantee 5)", () => {
  it("a second tenant's subscriptions and polling see none of the first tenant's events while its chain runs", async () => {
    const other = await createQuietTenant(app);
    const otherClient = client(other.token);
    const otherAgents = track(collect((h) => otherClient.trpc.agent.onStatus.subscribe({}, h)));
    const otherContext = track(collect((h) => otherClient.trpc.context.onStatusChanged.subscribe({}, h)));
    await eventually(
      () => otherAgents.items.length + otherContext.items.length,
      (n) => n === 2,
      "the second tenant's snapshots",
    );
    const agentCursor = otherAgents.items[0]!.id;
    const contextCursor = otherContext.items[0]!.id;

    // Registration starts the first tenant's setup chain: agents, steps, output, context file.
    const first = await registerTenant(app);
    const firstClient = client(first.token);
    // The context file completes inside the writer's last step, so wait for the writer's own
    // completion: only then has the first tenant published everything it will.
    const firstEvents = await eventually(
      () => firstClient.trpc.agent.events.query({ cursor: "0-0", limit: 500 }),
      (page) => page.items.some((i) => i.item.type === "agent:completed" && i.item.agentRole === "context-file-writer"),
      "the first tenant's chain",
    );
    expect(firstEvents.items.length).toBeGreaterThan(20);

    expect(otherAgents.items).toHaveLength(1);
    expect(otherAgents.items[0]!.data).toEqual({ type: "snapshot", snapshot: { runs: [] } });
    expect(otherContext.items).toHaveLength(1);
    expect(otherContext.items[0]!.data).toEqual({ type: "snapshot", snapshot: { context: null } });
    expect((await otherClient.trpc.agent.events.query({ cursor: agentCursor })).items).toEqual([]);
    expect((await otherClient.trpc.agent.events.query({ cursor: "0-0", limit: 500 })).items).toEqual([]);
    expect((await otherClient.trpc.context.events.query({ cursor: contextCursor })).items).toEqual([]);
    expect((await otherClient.trpc.agent.list.query()).runs).toEqual([]);
    expect(await otherClient.trpc.context.get.query()).toBeNull();
    // A tenant id smuggled into the input is ignored: the token decides.
    const smuggled = { tenantId: first.tenantId } as unknown as { limit: number };
    expect((await otherClient.trpc.agent.list.query(smuggled)).runs).toEqual([]);

    // The same subscriptions were live all along: the second tenant's own events arrive.
    await otherClient.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(1);
    ticker.finish();
    await app.pulse.services.context.reset(other.tenantId);
    await eventually(
      () => otherAgents.items.some((i) => i.data.type === "agent:completed"),
      Boolean,
      "the second tenant's own run",
    );
    await eventually(
      () => otherContext.items.length,
      (n) => n === 2,
      "the second tenant's own context event",
    );
    for (const item of [...otherAgents.items.slice(1), ...otherContext.items.slice(1)]) {
      expect(item.data.tenantId).toBe(other.tenantId);
    }
    expect(otherContext.items[1]!.data).toMatchObject({ type: "context:status_changed", status: "pending" });
    // And the first tenant's feed holds none of them.
    const firstAfter = await firstClient.trpc.agent.events.query({ cursor: firstEvents.cursor, limit: 500 });
    expect(firstAfter.items).toEqual([]);
  });

  it("another tenant's run id is NOT_FOUND for get, logs, events, onStatus, cancel and retry, exactly like a missing one", async () => {
    const owner = await createQuietTenant(app);
    const ownerClient = client(owner.token);
    const intruder = await createQuietTenant(app);
    const intruderClient = client(intruder.token);
    const { runId } = await ownerClient.trpc.agent.run.mutate({ agentRole: ticker.role });
    ticker.tick(2);
    await eventually(
      () => ownerClient.trpc.agent.get.query({ runId }),
      (r) => r.progress === 2,
      "the owner's run at tick 2",
    );
    expect((await ownerClient.trpc.agent.logs.query({ runId })).logs).toEqual([]);

    const missing = randomUUID();
    const calls = {
      get: (id: string) => intruderClient.trpc.agent.get.query({ runId: id }),
      logs: (id: string) => intruderClient.trpc.agent.logs.query({ runId: id }),
      events: (id: string) => intruderClient.trpc.agent.events.query({ runId: id, cursor: "0-0" }),
      eventsSnapshot: (id: string) => intruderClient.trpc.agent.events.query({ runId: id }),
      cancel: (id: string) => intruderClient.trpc.agent.cancel.mutate({ runId: id }),
      retry: (id: string) => intruderClient.trpc.agent.retry.mutate({ runId: id }),
      runAgain: (id: string) => intruderClient.trpc.agent.runAgain.mutate({ runId: id }),
      onStatus: (id: string) =>
        new Promise<never>((resolve, reject) => {
          const sub = intruderClient.trpc.agent.onStatus.subscribe(
            { runId: id },
            {
              onData: (value) => {
                sub.unsubscribe();
                resolve(value as never);
              },
              onError: (error) => reject(error),
            },
          );
        }),
    };
    for (const [name, call] of Object.entries(calls)) {
      const foreign = await failure(call(runId));
      const absent = await failure(call(missing));
      expect(foreign.data?.code, name).toBe("NOT_FOUND");
      expect(foreign.data?.httpStatus ?? 404, name).toBe(404);
      expect(foreign.message, name).toBe("run not found");
      expect({ code: foreign.data?.code, message: foreign.message }, name).toEqual({
        code: absent.data?.code,
        message: absent.message,
      });
    }

    // The intruder's cancel changed nothing: the owner's run is still running and finishes.
    const run = await ownerClient.trpc.agent.get.query({ runId });
    expect(run).toMatchObject({ status: "active", progress: 2 });
    const ownerFeed = track(collect((h) => ownerClient.trpc.agent.onStatus.subscribe({ runId }, h)));
    await eventually(
      () => ownerFeed.items.length,
      (n) => n >= 1,
      "the owner's run snapshot",
    );
    ticker.tick(1);
    ticker.finish();
    await eventually(
      () => ownerFeed.items.some((i) => i.data.type === "agent:completed"),
      Boolean,
      "the owner's run to complete",
    );
    expect(ownerFeed.items.some((i) => isTick(i, 3))).toBe(true);
    expect(ownerFeed.items.some((i) => i.data.type === "agent:cancelled")).toBe(false);
    // The intruder's own feed never carried the owner's events either.
    expect((await intruderClient.trpc.agent.events.query({ cursor: "0-0", limit: 500 })).items).toEqual([]);
  });

  it("a socket without a valid token cannot subscribe at all", async () => {
    const forged = client("not-a-token");
    const error = await new Promise<unknown>((resolve) => {
      const sub = forged.trpc.agent.onStatus.subscribe(
        {},
        { onData: () => resolve(new Error("got data")), onError: resolve },
      );
      collectors.push({ items: [], errors: [], events: () => [], unsubscribe: () => sub.unsubscribe() });
    });
    expect(error).toBeInstanceOf(TRPCClientError);
    expect((error as TRPCClientError<any>).data?.code).toBe("UNAUTHORIZED");
  });
});
