import { EventEmitter, on } from "node:events";
import { initTRPC, tracked, TRPCError } from "@trpc/server";
import { observable } from "@trpc/server/observable";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import {
  RecordingClient,
  startPulseHandler,
  startTrpcHandler,
  type HandlerUnderTest,
  type SharedCreateContext,
} from "../../test/ws-handler-pair";

/**
 * Pulse serves tRPC's WebSocket protocol with its own handler (`RpcConnection`); this test
 * holds it to tRPC's. Each script of client frames is replayed over a real socket against
 * tRPC's `applyWSSHandler` and against Pulse's handler (`RpcSocketServer`, as
 * http-server.ts wires it), both on the same router of plain procedures, and what the
 * client receives must be the same, frame for frame. A tRPC upgrade that changes the
 * protocol turns this red.
 *
 * Normalised, and why (nothing else is):
 * - Frames are compared per request id, in order; frames answering different requests may
 *   interleave differently (both handlers answer concurrently running procedures as they settle).
 *
 * Deliberate differences, kept out of the scripts (each is tested elsewhere):
 * - Pulse's limits: message rate, batch size, id length, subscriptions per connection,
 *   unauthenticated timeout, send-buffer cap (connection-guard.test.ts, src/test/security).
 *   Here they are Pulse's defaults, far above what the scripts send, and the unauthenticated
 *   timeout is lifted since these connections never sign in.
 * - A duplicate subscription id is refused before its procedure runs (tRPC runs it first,
 *   then refuses it): the same error either way, without a procedure call to waste.
 * - A subscription stopped before its procedure answered never starts (tRPC starts it,
 *   having not yet known its id): rpc-connection.int.test.ts.
 * - Before the connectionParams, a frame that is not JSON (or binary, or over Pulse's limits)
 *   is answered with its error and not taken for them (tRPC takes it, answers PARSE_ERROR and
 *   closes): a flood of them is closed as any flood is (src/test/security/web-socket-limits).
 * - createContext gets no `req`: no connection keeps its upgrade request (memory); `info` is tRPC's.
 */

interface Ctx {
  connectionParams: Record<string, string | undefined> | null;
}

const t = initTRPC.context<Ctx>().create({ isDev: false });
const ticks = new EventEmitter();

const router = t.router({
  greet: t.procedure.input(z.object({ name: z.string().min(1) })).query(({ input }) => `hello ${input.name}`),
  add: t.procedure.input(z.object({ a: z.number(), b: z.number() })).mutation(({ input }) => input.a + input.b),
  whoami: t.procedure.query(({ ctx }) => ctx.connectionParams),
  refuse: t.procedure.query(() => {
    throw new TRPCError({ code: "FORBIDDEN", message: "not for you" });
  }),
  crash: t.procedure.mutation(() => {
    throw new Error("database on fire");
  }),
  streamFromQuery: t.procedure.query(async function* () {
    yield 1;
  }),
  /** A tracked subscription that ends by itself, resuming after `lastEventId`. */
  count: t.procedure
    .input(z.object({ to: z.number(), lastEventId: z.string().optional() }))
    .subscription(async function* ({ input }) {
      for (let i = Number(input.lastEventId ?? 0) + 1; i <= input.to; i++) yield tracked(String(i), { n: i });
    }),
  /** Waits for events the usual tRPC way: ends only when stopped. */
  ticks: t.procedure.subscription(async function* ({ signal }) {
    for await (const [n] of on(ticks, "tick", { signal })) yield n as number;
  }),
  explode: t.procedure.subscription(async function* () {
    yield "last words";
    throw new TRPCError({ code: "CONFLICT", message: "the stream broke" });
  }),
  refuseToStart: t.procedure.input(z.object({ ok: z.literal(true) })).subscription(async function* () {
    yield 1;
  }),
  legacy: t.procedure.subscription(() =>
    observable<number>((emit) => {
      emit.next(1);
      emit.next(2);
      emit.complete();
      return () => undefined;
    }),
  ),
});

const createContext: SharedCreateContext<Ctx> = ({ info }) => {
  if (info.connectionParams?.token === "revoked")
    throw new TRPCError({ code: "UNAUTHORIZED", message: "token revoked" });
  return { connectionParams: info.connectionParams };
};

const query = (id: number | string, path: string, input?: unknown) => ({
  id,
  method: "query",
  params: { path, input },
});
const subscribe = (id: number | string, path: string, input?: unknown, extra: object = {}) => ({
  id,
  method: "subscription",
  params: { path, input, ...extra },
});
const stop = (id: number | string) => ({ id, method: "subscription.stop" });

/** What a script does against one handler; it ends once everything it waits for has arrived. */
type Script = (client: RecordingClient, server: HandlerUnderTest) => Promise<void>;

const answered = (id: unknown, type?: string) => (messages: any[]) =>
  messages.some(
    (m) =>
      m?.id === id &&
      (type === undefined
        ? "error" in m || m.result?.type === "data"
        : type === "error"
          ? "error" in m
          : m.result?.type === type),
  );

/** Closes every script: a last query, answered after everything the script's frames caused. */
async function finish(client: RecordingClient): Promise<void> {
  client.send(query("end", "greet", { name: "end" }));
  await client.until(answered("end"), "the closing query's answer");
}

const scripts: Record<string, { path?: string; script: Script }> = {
  "a query and a mutation, with and without JSON-RPC": {
    script: async (client) => {
      client.send(query(1, "greet", { name: "ada" }));
      client.send({ id: "m", jsonrpc: "2.0", method: "mutation", params: { path: "add", input: { a: 2, b: 3 } } });
      await client.until((m) => answered(1)(m) && answered("m")(m), "both answers");
      await finish(client);
    },
  },
  "errors: thrown by the procedure, unexpected, invalid input, unknown path, wrong type, an iterable from a query": {
    script: async (client) => {
      client.send(query(1, "refuse"));
      client.send({ id: 2, method: "mutation", params: { path: "crash" } });
      client.send(query(3, "greet", { name: "" }));
      client.send(query(4, "no.such.procedure"));
      client.send(query(5, "add", { a: 1, b: 2 }));
      client.send(query(6, "streamFromQuery"));
      await client.until((m) => [1, 2, 3, 4, 5, 6].every((id) => answered(id, "error")(m)), "six errors");
      await finish(client);
    },
  },
  "a tracked subscription that ends by itself, and its resumption after lastEventId": {
    script: async (client) => {
      client.send(subscribe(1, "count", { to: 3 }));
      await client.until(answered(1, "stopped"), "the first stream's end");
      client.send(subscribe(2, "count", { to: 3 }, { lastEventId: "1" }));
      await client.until(answered(2, "stopped"), "the resumed stream's end");
      await finish(client);
    },
  },
  "a subscription stopped by the client sends stopped and nothing after": {
    script: async (client) => {
      client.send(subscribe("s", "ticks"));
      await client.until(answered("s", "started"), "started");
      ticks.emit("tick", 1);
      await client.until(answered("s", "data"), "the first tick");
      client.send(stop("s"));
      await client.until(answered("s", "stopped"), "stopped");
      ticks.emit("tick", 2);
      await finish(client);
    },
  },
  "a subscription that throws: its item, the error, then stopped; one refused at start: the error alone": {
    script: async (client) => {
      client.send(subscribe(1, "explode"));
      client.send(subscribe(2, "refuseToStart", { ok: false }));
      await client.until((m) => answered(1, "stopped")(m) && answered(2, "error")(m), "both ends");
      await finish(client);
    },
  },
  "an observable subscription": {
    script: async (client) => {
      client.send(subscribe(1, "legacy"));
      await client.until(answered(1, "stopped"), "its end");
      await finish(client);
    },
  },
  "a batch of a query, a mutation and a subscription": {
    script: async (client) => {
      client.send([
        query(1, "greet", { name: "batch" }),
        { id: 2, method: "mutation", params: { path: "add", input: { a: 1, b: 1 } } },
        subscribe(3, "count", { to: 2 }),
      ]);
      await client.until((m) => answered(1)(m) && answered(2)(m) && answered(3, "stopped")(m), "every answer");
      await finish(client);
    },
  },
  "a duplicate subscription id is refused, the first one carries on": {
    script: async (client) => {
      client.send(subscribe(1, "ticks"));
      await client.until(answered(1, "started"), "started");
      client.send(subscribe(1, "ticks"));
      await client.until(answered(1, "error"), "the duplicate's error");
      ticks.emit("tick", 7);
      await client.until(answered(1, "data"), "the tick");
      client.send(stop(1));
      await client.until(answered(1, "stopped"), "stopped");
      await finish(client);
    },
  },
  "connectionParams first": {
    path: "/?connectionParams=1",
    script: async (client) => {
      client.send({ method: "connectionParams", data: { token: "abc" } });
      client.send(query(1, "whoami"));
      await client.until(answered(1), "whoami");
      await finish(client);
    },
  },
  "connectionParams expected but missing: the first frame is taken for them and refused, then the socket closes": {
    path: "/?connectionParams=1",
    script: async (client) => {
      client.send(query(1, "greet", { name: "lost" }));
      client.send(query(2, "whoami"));
      await client.closed();
    },
  },
  "connectionParams malformed: the error, then the socket closes": {
    path: "/?connectionParams=1",
    script: async (client) => {
      client.send({ method: "connectionParams", data: { token: 42 } });
      await client.closed();
    },
  },
  "createContext throws: the error, then the socket closes": {
    path: "/?connectionParams=1",
    script: async (client) => {
      client.send({ method: "connectionParams", data: { token: "revoked" } });
      await client.closed();
    },
  },
  "malformed frames: not JSON, binary, no id, a null id, an unknown method, a bad batch": {
    script: async (client) => {
      client.send("{ not json");
      client.send(Buffer.from([1, 2, 3]));
      client.send({ method: "query", params: { path: "greet", input: { name: "x" } } });
      client.send({ id: null, jsonrpc: "2.0", method: "query", params: { path: "greet", input: { name: "x" } } });
      client.send({ id: 1, method: "delete", params: { path: "greet" } });
      client.send({ id: 2, method: "query", params: { path: 5 } });
      client.send([query(3, "greet", { name: "fine" }), { id: 4, method: "query" }]);
      client.send("42");
      await client.until((m) => m.filter((x) => x?.id === null).length >= 8, "eight errors");
      await finish(client);
    },
  },
  "the reconnect notification": {
    script: async (client, server) => {
      client.send(query(1, "greet", { name: "before" }));
      await client.until(answered(1), "the answer");
      server.broadcastReconnect();
      await client.until((m) => m.some((x) => x?.method === "reconnect"), "the notification");
      await finish(client);
    },
  },
  "keep-alive: a client's PING is answered PONG, its PONG is not answered": {
    script: async (client) => {
      client.send("PONG");
      client.send("PING");
      await client.until((m) => m.includes("PONG"), "PONG");
      await finish(client);
    },
  },
};

/** The frames a client received, by request id (frames without one: by kind), each list in arrival order. */
function byRequest(client: RecordingClient): Record<string, string[]> {
  const grouped: Record<string, string[]> = {};
  client.frames.forEach((frame, i) => {
    const message = client.messages[i];
    const key =
      typeof message === "object" && message !== null && "id" in message ? `id ${JSON.stringify(message.id)}` : "other";
    (grouped[key] ??= []).push(frame);
  });
  if (client.closeCode !== null) grouped.close = [String(client.closeCode)];
  return grouped;
}

async function replay(server: HandlerUnderTest, path: string, script: Script): Promise<Record<string, string[]>> {
  const client = new RecordingClient(server.url + path);
  try {
    await client.opened;
    await script(client, server);
    return byRequest(client);
  } finally {
    client.close();
  }
}

describe("Pulse's WebSocket handler against tRPC's applyWSSHandler", () => {
  let trpc: HandlerUnderTest;
  let pulse: HandlerUnderTest;

  beforeAll(async () => {
    [trpc, pulse] = await Promise.all([
      startTrpcHandler({ router, createContext }),
      startPulseHandler({ router, createContext }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([trpc?.close(), pulse?.close()]);
  });

  for (const [name, { path = "/", script }] of Object.entries(scripts)) {
    it(`sends what tRPC sends: ${name}`, async () => {
      const expected = await replay(trpc, path, script);
      const received = await replay(pulse, path, script);
      expect(received).toEqual(expected);
    });
  }

  it("pings a quiet connection as tRPC's keep-alive does, and takes PONG for an answer", async () => {
    const pair = await Promise.all([
      startTrpcHandler({ router, createContext, pingMs: 200 }),
      startPulseHandler({ router, createContext, pingMs: 200 }),
    ]);
    try {
      const script: Script = async (client) => {
        await client.until((m) => m.includes("PING"), "the server's PING");
        client.send("PONG");
        await finish(client);
      };
      const [expected, received] = [await replay(pair[0], "/", script), await replay(pair[1], "/", script)];
      // Both ping again if the connection stays quiet; how many PINGs arrive before the end is timing, not protocol.
      const firstPing = (frames: Record<string, string[]>) => ({ ...frames, other: frames.other?.slice(0, 1) });
      expect(firstPing(received)).toEqual(firstPing(expected));
      expect(expected.other?.[0]).toBe("PING");
    } finally {
      await Promise.all(pair.map((server) => server.close()));
    }
  });
});
