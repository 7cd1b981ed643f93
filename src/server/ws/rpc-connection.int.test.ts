import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createQuietTenant, eventually, startTestPulse, type TestPulse } from "../../test/harness";
import { rawSocket, sleep, type RawSocket } from "../../test/security/security-kit";

/**
 * `RpcConnection` speaks tRPC's WebSocket protocol itself; wsLink's own behaviour is proven
 * by the feed, router and security suites. These tests drive the protocol frame by frame:
 * the parts a browser's wsLink rarely exercises, where a hand-written server could drift
 * from tRPC's.
 */

const ROLE = "client-researcher";
let app: TestPulse;
const sockets: RawSocket[] = [];

beforeAll(async () => {
  app = await startTestPulse({ runWorkers: false });
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await eventually(
    () => app.http.connections.size,
    (n) => n === 0,
    "every connection closed",
  );
});
afterAll(async () => {
  await app?.close();
});

/** A raw socket signed in as a fresh tenant's user. */
async function signedIn() {
  const tenant = await createQuietTenant(app);
  const socket = rawSocket(app);
  sockets.push(socket);
  await socket.opened;
  socket.authenticate(tenant.token);
  return { socket, tenant };
}

const subscription = (id: number | string, extra: object = {}) => ({
  id,
  method: "subscription",
  params: { path: "agent.onStatus", input: {} },
  ...extra,
});

describe("RpcConnection", () => {
  it("answers batched requests as tRPC does: started, tracked data, query results, JSON-RPC echoed, stopped on stop", async () => {
    const { socket, tenant } = await signedIn();
    socket.send([subscription(1, { jsonrpc: "2.0" }), { id: "q", method: "query", params: { path: "agent.roles" } }]);

    const started = await socket.waitFor((f) => f.json?.id === 1 && f.json.result?.type === "started", "started");
    expect(started.json).toEqual({ id: 1, jsonrpc: "2.0", result: { type: "started" } });
    const snapshot = await socket.waitFor((f) => f.json?.id === 1 && f.json.result?.type === "data", "the snapshot");
    expect(snapshot.json.jsonrpc).toBe("2.0");
    expect(snapshot.json.result.id).toBe(snapshot.json.result.data.id);
    expect(snapshot.json.result.data.data).toMatchObject({ type: "snapshot", snapshot: { runs: [] } });
    const roles = await socket.waitFor((f) => f.json?.id === "q", "the query's answer");
    expect(roles.json.result.type).toBe("data");
    expect(roles.json.result.data).toEqual(expect.arrayContaining([expect.objectContaining({ role: ROLE })]));

    // Live: an event reaches the subscription on its wire, with the same envelope.
    await eventually(
      () => app.http.connections.wiredSubscriptions,
      (n) => n === 1,
      "the subscription on its wire",
    );
    const run = await app.pulse.services.runs.start(tenant.tenantId, ROLE);
    const queued = await socket.waitFor(
      (f) => f.json?.id === 1 && f.json.result?.data?.data?.type === "agent:queued",
      "the live event",
    );
    expect(queued.json).toMatchObject({
      id: 1,
      jsonrpc: "2.0",
      result: { type: "data", data: { data: { runId: run.id } } },
    });
    expect(queued.json.result.id).toBe(queued.json.result.data.id);

    socket.send({ id: 1, jsonrpc: "2.0", method: "subscription.stop" });
    await socket.waitFor((f) => f.json?.id === 1 && f.json.result?.type === "stopped", "stopped");
    expect(app.http.connections.wiredSubscriptions).toBe(0);
    const after = socket.frames.length;
    await app.pulse.services.runs.cancel(tenant.tenantId, run.id);
    await sleep(200);
    expect(socket.frames.slice(after).filter((f) => f.json?.id === 1)).toEqual([]);
  });

  it("answers what is not a request with the router's error shape, and keeps serving the connection", async () => {
    const { socket } = await signedIn();
    const errors = (id: unknown) =>
      socket.frames.filter((f) => f.json?.id === id && f.json.error).map((f) => f.json.error.data.code as string);

    socket.send("{ not json");
    socket.send({ method: "query", params: { path: "agent.roles" } }); // no id
    socket.send({ id: null, method: "query", params: { path: "agent.roles" } });
    socket.send(Buffer.from([1, 2, 3]).toString("latin1"));
    socket.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await eventually(
      () => errors(null).length,
      (n) => n === 5,
      "five errors without an id",
    );
    // A binary frame too: tRPC's JSON decoder refuses it with a PARSE_ERROR.
    expect(errors(null)).toEqual(["PARSE_ERROR", "PARSE_ERROR", "PARSE_ERROR", "PARSE_ERROR", "PARSE_ERROR"]);

    socket.send({ id: 7, method: "query", params: { path: "agent.noSuchThing" } });
    const missing = await socket.waitFor((f) => f.json?.id === 7, "the unknown procedure's answer");
    expect(missing.json.error).toMatchObject({
      code: -32004,
      data: { code: "NOT_FOUND", httpStatus: 404, path: "agent.noSuchThing", zodError: null },
    });

    socket.send({ id: 8, method: "query", params: { path: "agent.get", input: { runId: "" } } });
    const invalid = await socket.waitFor((f) => f.json?.id === 8, "the invalid input's answer");
    expect(invalid.json.error.data).toMatchObject({ code: "BAD_REQUEST", zodError: expect.any(Object) });

    socket.send(subscription(9));
    await socket.waitFor(
      (f) => f.json?.id === 9 && f.json.result?.type === "data",
      "the first subscription's snapshot",
    );
    socket.send(subscription(9));
    await eventually(
      () => errors(9),
      (e) => e.length === 1,
      "the duplicate's error",
    );
    expect(errors(9)).toEqual(["BAD_REQUEST"]);

    socket.send("PING");
    await socket.waitFor((f) => f.text === "PONG", "PONG");
    socket.send({ id: 10, method: "query", params: { path: "agent.roles" } });
    await socket.waitFor((f) => f.json?.id === 10 && f.json.result?.type === "data", "a query after all that");
    expect(socket.isOpen).toBe(true);
  });

  it("never starts a subscription stopped before its procedure answered, and holds nothing for it", async () => {
    const { socket, tenant } = await signedIn();
    socket.send([subscription(1), { id: 1, method: "subscription.stop" }]);
    socket.send(subscription(2));
    await socket.waitFor(
      (f) => f.json?.id === 2 && f.json.result?.type === "data",
      "the other subscription's snapshot",
    );
    await eventually(
      () => app.http.connections.wiredSubscriptions,
      (n) => n === 1,
      "only the live subscription on a wire",
    );
    await app.pulse.services.runs.start(tenant.tenantId, ROLE);
    await socket.waitFor(
      (f) => f.json?.id === 2 && f.json.result?.data?.data?.type === "agent:queued",
      "the live event on the other subscription",
    );
    expect(socket.answers(1)).toEqual([]);
  });

  it("ends a connection whose connectionParams are malformed, saying why", async () => {
    const socket = rawSocket(app);
    sockets.push(socket);
    await socket.opened;
    socket.send({ method: "connectionParams", data: { token: 42 } });
    const refused = await socket.waitFor((f) => f.json?.id === null && f.json.error, "the error");
    expect(refused.json.error.data.code).toBe("PARSE_ERROR");
    await socket.closedWithin(5_000);
  });
});
