import { EventEmitter, on } from "node:events";
import { initTRPC, TRPCError } from "@trpc/server";
import type { TRPCRequestInfo } from "@trpc/server/http";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { eventually } from "../../test/harness";
import { RecordingClient, startPulseHandler } from "../../test/ws-handler-pair";
import { RpcHandler, type RpcErrorOptions } from "./rpc-connection";

/**
 * What procedures get under Pulse's handler is what tRPC's handler gives them: a signal per
 * call, aborted when the client stops the subscription, the socket closes or the server
 * shuts down; `info` in createContext; onError's type, path and input. Subscriptions here
 * are written the usual tRPC way, awaiting events with `opts.signal`.
 *
 * @see https://trpc.io/docs/server/subscriptions
 */

const t = initTRPC.context<{ info: TRPCRequestInfo }>().create({ isDev: false });

/** Each test's emitter and what its procedures saw. */
function fixture() {
  const ticks = new EventEmitter();
  const finished: string[] = [];
  const errors: RpcErrorOptions<unknown>[] = [];
  const contexts: TRPCRequestInfo[] = [];
  const router = t.router({
    ticks: t.procedure.input(z.object({ name: z.string() })).subscription(async function* ({ input, signal }) {
      try {
        for await (const [n] of on(ticks, "tick", { signal })) yield n as number;
      } finally {
        finished.push(input.name);
      }
    }),
    refuse: t.procedure.input(z.object({ why: z.string() })).query(({ input }) => {
      throw new TRPCError({ code: "FORBIDDEN", message: input.why });
    }),
  });
  return { ticks, finished, errors, contexts, router };
}

const subscribe = (id: number, name: string) => ({
  id,
  method: "subscription",
  params: { path: "ticks", input: { name } },
});
const has = (id: number, type: string) => (messages: any[]) =>
  messages.some((m) => m?.id === id && (type === "error" ? "error" in m : m.result?.type === type));

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function start(f: ReturnType<typeof fixture>, maxSubscriptions = 20) {
  const server = await startPulseHandler({
    router: f.router,
    createContext: ({ info }) => {
      f.contexts.push(info);
      return { info };
    },
    onError: (error) => f.errors.push(error as RpcErrorOptions<unknown>),
    limits: { maxSubscriptions },
  });
  cleanup.push(() => server.close());
  return server;
}

async function connect(url: string) {
  const client = new RecordingClient(url);
  cleanup.push(() => client.close());
  await client.opened;
  return client;
}

describe("procedures under Pulse's WebSocket handler", () => {
  it("a subscription awaiting on(emitter, { signal }) and stopped by the client: stopped sent, its finally ran, its place under the cap freed", async () => {
    const f = fixture();
    const server = await start(f, 2);
    const client = await connect(server.url);
    client.send(subscribe(1, "first"));
    client.send(subscribe(2, "second"));
    await client.until((m) => has(1, "started")(m) && has(2, "started")(m), "both started");
    f.ticks.emit("tick", 1);
    await client.until((m) => has(1, "data")(m) && has(2, "data")(m), "the tick on both");

    client.send({ id: 1, method: "subscription.stop" });
    await client.until(has(1, "stopped"), "the first one's stopped");
    expect(f.finished).toEqual(["first"]);
    // A third subscription fits under the cap of two: the stopped one no longer counts.
    client.send(subscribe(3, "third"));
    await client.until(has(3, "started"), "the third one started");
    expect(client.messages.filter((m) => m?.id === 3 && "error" in m)).toEqual([]);
    f.ticks.emit("tick", 2);
    await client.until(has(3, "data"), "the tick on the third");
    expect(client.messages.filter((m) => m?.id === 1 && m.result?.type === "data")).toHaveLength(1);
  });

  it("aborts every signal when the socket closes: its subscriptions' and createContext's info.signal", async () => {
    const f = fixture();
    const server = await start(f);
    const client = await connect(server.url);
    client.send(subscribe(1, "a"));
    client.send(subscribe(2, "b"));
    await client.until((m) => has(1, "started")(m) && has(2, "started")(m), "both started");
    const [info] = f.contexts;
    expect(info).toMatchObject({
      connectionParams: null,
      type: "unknown",
      calls: [],
      isBatchCall: false,
      accept: null,
      url: null,
    });
    expect(info!.signal.aborted).toBe(false);

    client.close();
    await eventually(
      () => [...f.finished].sort(),
      (names) => names.length === 2,
      "both subscriptions' finally",
    );
    expect(info!.signal.aborted).toBe(true);
    await eventually(
      () => server.registry.wiredSubscriptions,
      (n) => n === 0,
      "no subscription left",
    );
  });

  it("aborts every subscription's signal when the server shuts down", async () => {
    const f = fixture();
    const server = await start(f);
    const client = await connect(server.url);
    client.send(subscribe(1, "until-shutdown"));
    await client.until(has(1, "started"), "started");
    await server.sockets.close();
    await eventually(
      () => f.finished,
      (names) => names.includes("until-shutdown"),
      "the subscription's finally",
    );
    expect(await client.closed()).toBe(1001);
  });

  it("gives createContext the connectionParams in tRPC's info, and onError the call's type, path and input", async () => {
    const f = fixture();
    const server = await start(f);
    const client = await connect(`${server.url}/?connectionParams=1`);
    client.send({ method: "connectionParams", data: { token: "t-1" } });
    client.send({ id: 5, method: "query", params: { path: "refuse", input: { why: "closed" } } });
    await client.until(has(5, "error"), "the refusal");
    expect(f.contexts[0]?.connectionParams).toEqual({ token: "t-1" });
    expect(f.errors).toHaveLength(1);
    expect(f.errors[0]).toMatchObject({
      type: "query",
      path: "refuse",
      input: { why: "closed" },
      ctx: { info: f.contexts[0] },
    });
    expect(f.errors[0]!.error.code).toBe("FORBIDDEN");
  });

  it("refuses a router with a data transformer at start, saying why", () => {
    const withTransformer = initTRPC.create({
      transformer: { serialize: (v: unknown) => ({ wrapped: v }), deserialize: (v: any) => v.wrapped },
    });
    const router = withTransformer.router({ ping: withTransformer.procedure.query(() => "pong") });
    expect(() => new RpcHandler({ router, createContext: () => ({}) })).toThrow(/data transformer/);
    // A router without one is served.
    expect(
      new RpcHandler({ router: fixture().router, createContext: () => ({ info: null as never }) }).router,
    ).toBeDefined();
  });
});
