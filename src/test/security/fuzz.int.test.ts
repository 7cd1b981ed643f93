import net from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { compareStreamIds } from "../../server/events/schema";
import {
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  startTestPulse,
  untilHealthy,
  type TestPulse,
} from "../harness";
import { AttackLog, heapUsedAfterGc, rawSocket, sleep, type RawSocket } from "./security-kit";

/**
 * Hostile frames: thousands of malformed WebSocket frames (garbage, truncated JSON, wrong
 * and huge ids, unknown methods, wrong types, deep nesting, prototype pollution, invalid
 * UTF-8, oversized frames) and malformed connectionParams, sent while a legitimate client
 * watches a run. The process stays up, the legitimate subscription receives every event in
 * order, nothing answers INTERNAL_SERVER_ERROR, and the heap stays flat. An upgrade with
 * thousands of headers is refused without harm.
 */

const LONG = process.env.PULSE_LONG === "1";
// The long run (`npm run test:security`) scales every count up; its tests get time to match.
if (LONG) vi.setConfig({ testTimeout: 900_000 });
const log = new AttackLog("fuzz", LONG);
const FRAMES = LONG ? 12_000 : 2_000;
const PARAM_ATTEMPTS = LONG ? 1_000 : 100;
const WORKERS = 12;
const FRAMES_PER_CONNECTION = 150;
const ROLE = "steady-agent";

let app: TestPulse;
beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    externalAgentRoles: [ROLE],
    // Frames must reach tRPC's parser rather than stop at the rate limit (tested on its own).
    security: { ws: { messagesPerSecond: 1_000_000, authTimeoutMs: 3_000 } },
  });
});
afterAll(async () => {
  await log.save();
  await app?.close();
});

/** A small deterministic generator, so a failing run can be replayed with the same seed. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick };
}

const PATHS = [
  "agent.onStatus",
  "agent.events",
  "agent.list",
  "agent.get",
  "agent.logs",
  "agent.run",
  "agent.cancel",
  "context.onStatusChanged",
  "context.approve",
  "auth.login",
  "share.onRun",
  "share.run",
  "agent.nope",
  "__proto__",
  "constructor",
  "agent.onStatus.extra",
  "",
  "x".repeat(10_000),
];
const METHODS = [
  "query",
  "mutation",
  "subscription",
  "subscription.stop",
  "delete",
  "subscription.start",
  "",
  42,
  null,
  ["query"],
];
const IDS = [
  1,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  2 ** 53 + 1,
  "1",
  "",
  "x".repeat(64),
  "x".repeat(65),
  "y".repeat(60_000),
  null,
  {},
  [],
  true,
  { id: 1 },
];
const INPUTS: unknown[] = [
  undefined,
  null,
  {},
  [],
  "string",
  42,
  { runId: 42 },
  { runId: "r".repeat(10_000) },
  { runId: "r\u0000" },
  { input: { note: "\u0000" } },
  { limit: -5 },
  { limit: "all" },
  { lastEventId: {} },
  { lastEventId: "99999999999999999999-99999999999999999999" },
  { agentRole: "../../etc/passwd" },
  { version: 1e308 },
  { status: ["queued", "x"] },
  { __proto__: { polluted: true } },
  { constructor: { prototype: { polluted: true } } },
  { input: { a: { b: { c: 1 } } } },
];

/** One malformed (or occasionally valid) frame. */
function frame(
  r: ReturnType<typeof prng>,
  valid: () => string,
): { data: string | Buffer; binary: boolean; kind: string } {
  const text = (kind: string, data: string) => ({ data, binary: false, kind });
  switch (r.int(14)) {
    case 0: {
      const bytes = Buffer.alloc(1 + r.int(2_000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = r.int(256);
      return { data: bytes, binary: true, kind: "random bytes" };
    }
    case 1:
      return text(
        "garbage text",
        Array.from({ length: 1 + r.int(500) }, () => String.fromCharCode(32 + r.int(95))).join(""),
      );
    case 2: {
      const whole = valid();
      return text("truncated JSON", whole.slice(0, r.int(whole.length)));
    }
    case 3:
      return text(
        "wrong or huge ids",
        JSON.stringify({ id: r.pick(IDS), method: "query", params: { path: "agent.list", input: {} } }),
      );
    case 4:
      return text(
        "unknown methods",
        JSON.stringify({ id: r.int(1e6), method: r.pick(METHODS), params: { path: r.pick(PATHS) } }),
      );
    case 5:
      return text(
        "wrong types",
        JSON.stringify({
          id: r.int(1e6),
          method: r.pick(["query", "subscription", "mutation"]),
          params: r.pick([
            null,
            "params",
            [],
            { path: 42 },
            { path: r.pick(PATHS), input: r.pick(INPUTS), lastEventId: r.pick([{}, 42, "x", "1-1"]) },
          ]),
        }),
      );
    case 6: {
      const depth = 1 + r.int(20_000);
      return text(
        "deep nesting",
        r.next() < 0.5
          ? "[".repeat(depth) + "]".repeat(depth)
          : `${'{"a":'.repeat(Math.min(depth, 12_000))}1${"}".repeat(Math.min(depth, 12_000))}`,
      );
    }
    case 7: {
      const batch = Array.from({ length: r.int(40) }, () => ({
        id: r.pick(IDS),
        method: r.pick(METHODS),
        params: { path: r.pick(PATHS), input: r.pick(INPUTS) },
      }));
      return text("junk batches", JSON.stringify(batch));
    }
    case 8:
      return text(
        "prototype pollution",
        `{"id":${r.int(1e6)},"method":"query","params":{"path":"agent.list","input":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}},"__proto__":{"polluted":true}}`,
      );
    case 9:
      return text("keep-alive and empty frames", r.pick(["PING", "PONG", "", " ", "null", "[]", "{}", "0", '""']));
    case 10:
      return text(
        "stops and duplicate subscriptions",
        JSON.stringify(
          r.next() < 0.5
            ? { id: r.int(20), method: "subscription.stop" }
            : { id: 7, method: "subscription", params: { path: "agent.onStatus", input: {} } },
        ),
      );
    case 11:
      return text("valid requests", valid());
    case 12:
      return r.next() < 0.5
        ? text("frames just under the size limit", "z".repeat(60 * 1024))
        : text("frames over the size limit", "z".repeat(70 * 1024));
    default:
      return { data: Buffer.from([0xff, 0xfe, 0xfd, 0x80]), binary: false, kind: "invalid UTF-8 text" };
  }
}

/** Malformed connectionParams frames (the first frame of a connection opened with connectionParams=1). */
function malformedParams(r: ReturnType<typeof prng>, token: string): string {
  return r.pick([
    "garbage",
    "[]",
    "null",
    JSON.stringify({ method: "connectionParams" }),
    JSON.stringify({ method: "connectionParams", data: 123 }),
    JSON.stringify({ method: "connectionParams", data: [] }),
    JSON.stringify({ method: "connectionParams", data: { token: { forged: true } } }),
    JSON.stringify({ method: "connectionParams", data: { token: 42 } }),
    JSON.stringify({ method: "connectionParams", data: { token: "t".repeat(50_000) } }),
    JSON.stringify({ method: "connectionParams", data: { token: `${token}x` } }),
    JSON.stringify({ method: "connectionParams", data: { token: token.split(".").reverse().join(".") } }),
    `{"method":"connectionParams","data":{"__proto__":{"token":"${token}"}}}`,
    JSON.stringify({ method: "params", data: { token: "forged" } }),
    JSON.stringify({ id: 1, method: "subscription", params: { path: "agent.onStatus", input: {} } }),
  ]);
}

describe("malformed WebSocket traffic", () => {
  it(`${FRAMES} malformed frames and ${PARAM_ATTEMPTS} malformed connectionParams leave the process up, other subscribers receiving, and the heap flat`, async () => {
    const { services } = app.pulse;
    // The legitimate side: a dashboard watching a run that reports steadily throughout.
    const steady = await createQuietTenant(app);
    const fuzzer = await createQuietTenant(app);
    const run = await services.runs.start(steady.tenantId, ROLE);
    const base = {
      tenantId: steady.tenantId,
      runId: run.id,
      jobId: run.jobId,
      queue: run.queue,
      agentRole: ROLE,
      attempt: 1,
    };
    await services.bus.publish({ ...base, type: "agent:active", startedAt: new Date().toISOString() });
    const dashboard = connectClient(app, steady.token);
    const live = collect((h) => dashboard.trpc.agent.onStatus.subscribe({ runId: run.id }, h));
    await eventually(
      () => live.items.length,
      (n) => n === 1,
      "the dashboard's snapshot",
    );
    let published = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        published += 1;
        await services.bus.publish({
          ...base,
          type: "agent:progress",
          progress: published % 100,
          message: `steady ${published}`,
          phase: "running",
        });
        await sleep(10);
      }
    })();

    const valid = (r: ReturnType<typeof prng>) => () =>
      JSON.stringify(
        r.pick([
          { id: r.int(1e6), method: "query", params: { path: "agent.list", input: { limit: 5 } } },
          { id: r.int(1e6), method: "subscription", params: { path: "agent.onStatus", input: {} } },
          { id: r.int(1e6), method: "query", params: { path: "agent.roles" } },
          {
            id: r.int(1e6),
            method: "subscription",
            params: { path: "context.onStatusChanged", input: {}, lastEventId: "0-0" },
          },
        ]),
      );

    const internalErrors: string[] = [];
    const kinds = new Map<string, number>();
    const closes = new Map<number, number>();
    let sent = 0;
    let paramsSent = 0;
    let baseline = 0;
    const watchFrames = (s: RawSocket) =>
      s.ws.on("message", (data) => {
        const text = data.toString();
        if (text.includes("INTERNAL_SERVER_ERROR")) internalErrors.push(text.slice(0, 300));
      });

    /** One worker: connection after connection, each authenticated (or not, or badly), each sent a run of frames. */
    const worker = async (seed: number) => {
      const r = prng(seed);
      while (sent < FRAMES || paramsSent < PARAM_ATTEMPTS) {
        const socket = rawSocket(app);
        watchFrames(socket);
        try {
          await socket.opened;
        } catch {
          continue;
        }
        if (paramsSent < PARAM_ATTEMPTS && r.next() < 0.3) {
          paramsSent += 1;
          socket.send(malformedParams(r, fuzzer.token));
          socket.request(1, "subscription", "agent.onStatus", {});
          await Promise.race([
            socket.closed,
            socket.waitFor((f) => f.json?.id === 1 || f.json?.id === null, "an answer", 3_000).catch(() => null),
          ]);
          const got = socket.answers(1).find((f) => f.json.result?.type === "data");
          log.attempt(
            "Malformed connectionParams",
            "no session: UNAUTHORIZED or the connection closed; never data",
            !got,
            () => `got data: ${got?.text.slice(0, 200)}`,
          );
          socket.close();
          continue;
        }
        socket.authenticate(fuzzer.token);
        for (let i = 0; i < FRAMES_PER_CONNECTION && sent < FRAMES && socket.isOpen; i++) {
          const f = frame(r, valid(r));
          sent += 1;
          kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
          socket.ws.send(f.data, { binary: f.binary });
          // These end the connection (1009, 1007): frames sent after them would never be read.
          if (f.kind === "frames over the size limit" || f.kind === "invalid UTF-8 text") {
            const { code } = await socket.closedWithin();
            closes.set(code, (closes.get(code) ?? 0) + 1);
            break;
          }
          // Let the server breathe now and then, as a real client's pace would.
          if (i % 25 === 0) await sleep(1);
        }
        await sleep(20);
        socket.close();
        if (baseline === 0 && sent >= 300) {
          // Measured once the server has seen every kind of frame, so caches and pools exist.
          baseline = heapUsedAfterGc();
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, i) => worker(1_000 + i)));
    publishing = false;
    await publisher;
    await eventually(
      () => app.http.connections.size,
      (n) => n <= 1,
      "the fuzzers' connections gone",
      15_000,
    );
    await eventually(
      () => live.events().length,
      (n) => n === published,
      `all ${published} steady events on the dashboard`,
      15_000,
    );
    const after = heapUsedAfterGc();

    // The process is up and serves.
    expect((await untilHealthy(app.baseUrl)).body).toEqual({ status: "ok", reasons: [] });
    // The legitimate subscriber received everything, in order, exactly once.
    const messages = live.events().map((i) => i.data.message);
    const steadyOk = live.errors.length === 0 && messages.every((m, k) => m === `steady ${k + 1}`);
    log.attempt(
      "Other clients' subscriptions during the fuzz",
      "every event, in order, no error",
      steadyOk,
      () => `${messages.length} of ${published}, errors ${live.errors.length}`,
    );
    for (let i = 1; i < live.items.length; i++)
      expect(compareStreamIds(live.items[i]!.id, live.items[i - 1]!.id)).toBe(1);
    expect(live.errors).toEqual([]);
    expect(messages).toEqual(Array.from({ length: published }, (_, k) => `steady ${k + 1}`));
    // Nothing was polluted, nothing failed inside.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Answers cannot be matched to frames (many have no usable id), so an internal error counts against every kind.
    for (const [kind, count] of [...kinds].sort()) {
      for (let i = 0; i < count; i++)
        log.attempt(
          `Malformed frame: ${kind}`,
          "an error answer or a close; process up; no INTERNAL_SERVER_ERROR",
          internalErrors.length === 0,
        );
    }
    expect(internalErrors).toEqual([]);
    const growthMb = (after - baseline) / 1024 / 1024;
    log.attempt(
      "Heap after the fuzz (retained growth)",
      "under 32 MB over the baseline",
      growthMb < 32,
      () => `${growthMb.toFixed(1)} MB`,
    );
    log.observe("Heap after the fuzz (retained growth)", `${growthMb.toFixed(1)} MB retained after ${sent} frames`);
    // Oversized frames close with 1009, invalid UTF-8 with 1007: the protocol's own answers.
    expect([...closes.keys()].every((code) => code === 1009 || code === 1007)).toBe(true);
    expect(growthMb).toBeLessThan(32);
    expect(sent).toBe(FRAMES);
    expect(log.failures().map(({ attack, examples }) => ({ attack, examples }))).toEqual([]);
    await dashboard.close();
  }, 120_000);

  it("an upgrade with thousands of headers is refused (431) and the server carries on", async () => {
    const port = Number(new URL(app.baseUrl).port);
    const tenant = await createQuietTenant(app);
    const dashboard = connectClient(app, tenant.token);
    const live = collect((h) => dashboard.trpc.agent.onStatus.subscribe({}, h));
    await eventually(
      () => live.items.length,
      (n) => n === 1,
      "a dashboard's snapshot",
    );
    const upgrade = (headers: number) =>
      new Promise<string>((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        let answer = "";
        socket.on("data", (d) => (answer += d.toString()));
        socket.on("error", () => resolve(answer || "reset"));
        socket.on("close", () => resolve(answer || "closed"));
        socket.write(
          `GET /api/trpc?connectionParams=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n` +
            Array.from({ length: headers }, (_, i) => `X-Pad-${i}: ${"v".repeat(8)}\r\n`).join("") +
            "\r\n",
        );
        setTimeout(() => socket.destroy(), 2_000);
      });
    for (let i = 0; i < (LONG ? 200 : 10); i++) {
      const answer = await upgrade(5_000 + i * 10);
      log.attempt(
        "Upgrade with thousands of headers",
        "431 or closed before any WebSocket exists",
        answer.startsWith("HTTP/1.1 431") || answer === "closed" || answer === "reset",
        () => answer.slice(0, 100),
      );
    }
    expect((await untilHealthy(app.baseUrl)).status).toBe(200);
    expect(dashboard.ws.connection?.state).toBe("open");
    expect(live.errors).toEqual([]);
    expect(log.failures()).toEqual([]);
    live.unsubscribe();
    await dashboard.close();
  });
});
