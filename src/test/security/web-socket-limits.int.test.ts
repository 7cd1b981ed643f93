import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { TRPC_PATH } from "../../server/http-server";
import { REJECTIONS_BEFORE_CLOSE } from "../../server/ws/connection-guard";
import {
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  startTestPulse,
  type TestClient,
  type TestPulse,
} from "../harness";
import {
  AttackLog,
  errorCode,
  httpClient,
  rawSocket,
  sleep,
  upgradeStatus,
  type Frame,
  type RawSocket,
  type RawSocketOptions,
  type UpgradeRefused,
} from "./security-kit";

/**
 * The WebSocket's limits against hostile clients: Origin allowlist, frame size, no
 * compression, keep-alive, the unauthenticated timeout, and the caps on subscriptions per
 * connection, connections per user, tenant and address, and messages per second, each
 * answered with a clear error instead of a crash.
 */

const LONG = process.env.PULSE_LONG === "1";
// The long run (`npm run test:security`) scales every count up; its tests get time to match.
if (LONG) vi.setConfig({ testTimeout: 900_000 });
const log = new AttackLog("web-socket-limits", LONG);
const LIMITS = {
  maxSubscriptions: 4,
  perUser: 3,
  perTenant: 5,
  perIp: 8,
  perShareLink: 3,
  perViewerIp: 2,
  messagesPerSecond: 20,
  maxBatch: 8,
  authTimeoutMs: 500,
  pingMs: 300,
  // Long enough that a healthy client's PONG, delayed by a loaded machine, still arrives in time.
  pongWaitMs: 2_000,
  maxPayloadBytes: 64 * 1024,
  maxBufferedBytes: 256 * 1024,
};
const ROLE = "chatty-agent";

let app: TestPulse;
let listed: TestPulse;
const sockets: RawSocket[] = [];
const clients: TestClient[] = [];

beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    externalAgentRoles: [ROLE],
    security: { trustProxy: true, sessionCheckIntervalMs: 100, ws: LIMITS },
  });
  listed = await startTestPulse({
    runWorkers: false,
    database: app.database,
    security: { allowedOrigins: ["https://dash.example.com"] },
  });
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await eventually(
    () => app.http.connections.size,
    (n) => n === 0,
    "every connection closed",
  );
});
afterAll(async () => {
  await log.save();
  await listed?.close();
  await app?.close();
});

let addresses = 0;
/** Each raw socket comes from an address of its own (the test server trusts X-Forwarded-For), unless told otherwise. */
function socket(options: RawSocketOptions & { address?: string } = {}, target = app): RawSocket {
  addresses += 1;
  const address = options.address ?? `10.77.${Math.floor(addresses / 250)}.${addresses % 250}`;
  const s = rawSocket(target, { ...options, headers: { "x-forwarded-for": address, ...options.headers } });
  sockets.push(s);
  return s;
}

async function signedIn(token: string, options: RawSocketOptions & { address?: string } = {}): Promise<RawSocket> {
  const s = socket(options);
  await s.opened;
  s.authenticate(token);
  return s;
}

/** Subscribes on a raw socket and waits for its first data frame or error; a socket that closes first fails with its close code. */
async function subscribe(s: RawSocket, id: number, path = "agent.onStatus", input: unknown = {}) {
  s.request(id, "subscription", path, input);
  const answers = (f: Frame) => f.json?.id === id && (Boolean(f.json.error) || f.json.result?.type === "data");
  await eventually(
    () => s.frames.some(answers) || !s.isOpen,
    (done) => done,
    `subscription ${id}`,
    30_000,
  );
  const answer = s.frames.find(answers);
  if (!answer) throw new Error(`the socket closed (${(await s.closed).code}) before answering subscription ${id}`);
  return answer;
}

describe("the WebSocket upgrade", () => {
  it("checks Origin: a page from another origin gets 403 before any WebSocket exists; the same origin and non-browser clients connect", async () => {
    const port = new URL(app.baseUrl).port;
    const hostile = [
      "https://evil.example",
      "null",
      `http://127.0.0.1.evil.example:${port}`,
      "http://127.0.0.1:1",
      "file://",
      `ws://127.0.0.1:${port}`,
    ];
    for (let round = 0; round < (LONG ? 200 : 2); round++) {
      for (const origin of hostile) {
        const status = await upgradeStatus(socket({ origin }));
        log.attempt(
          "Cross-site WebSocket hijacking (foreign Origin)",
          "403 before the upgrade",
          status === 403,
          () => `${origin}: ${status}`,
        );
      }
      for (const origin of ["https://evil.example", `http://127.0.0.1:${new URL(listed.baseUrl).port}`]) {
        const status = await upgradeStatus(socket({ origin }, listed));
        log.attempt(
          "Cross-site WebSocket hijacking (foreign Origin)",
          "403 before the upgrade",
          status === 403,
          () => `${origin} (allowlist): ${status}`,
        );
      }
    }
    expect(log.failures()).toEqual([]);
    expect(await upgradeStatus(socket({ origin: `http://127.0.0.1:${port}` }))).toBe(101);
    expect(await upgradeStatus(socket({}))).toBe(101);
    expect(await upgradeStatus(socket({ origin: "https://dash.example.com" }, listed))).toBe(101);
  });

  it("never negotiates permessage-deflate", async () => {
    const s = socket({ perMessageDeflate: true });
    await s.opened;
    expect(s.ws.extensions).toBe("");
  });
});

describe("frames", () => {
  it("larger than the limit close the connection with 1009; smaller ones are served", async () => {
    const tenant = await createQuietTenant(app);
    const fine = await signedIn(tenant.token);
    fine.send({
      id: 1,
      method: "query",
      params: { path: "agent.roles", input: { padding: "x".repeat(LIMITS.maxPayloadBytes - 200) } },
    });
    await fine.waitFor((f) => f.json?.id === 1, "the answer to a frame under the limit");
    for (let i = 0; i < (LONG ? 100 : 3); i++) {
      const s = await signedIn(tenant.token);
      s.send("x".repeat(LIMITS.maxPayloadBytes + 1 + i));
      const { code } = await s.closedWithin();
      log.attempt("Frame over maxPayload", "connection closed with 1009", code === 1009, () => `closed with ${code}`);
    }
    expect(log.failures()).toEqual([]);
    expect(fine.isOpen).toBe(true);
  });
});

describe("keep-alive", () => {
  it("drops a peer that stops answering pings, and keeps one that answers", async () => {
    const tenant = await createQuietTenant(app);
    const live = connectClient(app, tenant.token);
    clients.push(live);
    const feed = collect((h) => live.trpc.agent.onStatus.subscribe({}, h));
    await eventually(
      () => feed.items.length,
      (n) => n === 1,
      "the live client's snapshot",
    );
    for (let i = 0; i < (LONG ? 20 : 2); i++) {
      const dead = await signedIn(tenant.token);
      await subscribe(dead, 1);
      dead.answerPings = false;
      const started = Date.now();
      const { code } = await dead.closedWithin();
      const took = Date.now() - started;
      log.attempt(
        "Dead peer (no pong)",
        "dropped after ping + pong timeout",
        took < (LIMITS.pingMs + LIMITS.pongWaitMs) * 4,
        () => `closed with ${code} after ${took} ms`,
      );
    }
    expect(log.failures()).toEqual([]);
    expect(live.ws.connection?.state).toBe("open");
    expect(feed.errors).toEqual([]);
    feed.unsubscribe();
  });
});

describe("a reader that stops reading", () => {
  it("is disconnected once its unsent output passes the limit, while other subscribers keep receiving", async () => {
    const tenant = await createQuietTenant(app);
    const { runs, bus } = app.pulse.services;
    const run = await runs.start(tenant.tenantId, ROLE);
    const base = {
      tenantId: tenant.tenantId,
      runId: run.id,
      jobId: run.jobId,
      queue: run.queue,
      agentRole: ROLE,
      attempt: 1,
    };
    await bus.publish({ ...base, type: "agent:active", startedAt: new Date().toISOString() });
    const healthy = connectClient(app, tenant.token);
    clients.push(healthy);
    const feed = collect((h) => healthy.trpc.agent.onStatus.subscribe({ runId: run.id }, h));
    const stalled = await signedIn(tenant.token);
    await subscribe(stalled, 1, "agent.onStatus", { runId: run.id });
    await eventually(
      () => feed.items.length,
      (n) => n === 1,
      "the healthy client's snapshot",
    );
    // The stalled client's TCP socket stops reading: the kernel's buffers fill, then the server's.
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const chunk = "o".repeat(16_000);
    let published = 0;
    while (app.http.connections.size > 1 && published < 2_000) {
      await bus.publish({ ...base, type: "agent:output", chunk });
      published += 1;
    }
    log.attempt(
      "Slow reader (stops reading)",
      "disconnected once its unsent output passes the limit",
      app.http.connections.size === 1,
      () => `${published} chunks published`,
    );
    expect(app.http.connections.size).toBe(1);
    await eventually(
      () => feed.events().length,
      (n) => n === published,
      "every chunk on the healthy client",
      15_000,
    );
    expect(feed.errors).toEqual([]);
    feed.unsubscribe();
  });
});

describe("unauthenticated connections", () => {
  it("are closed after the timeout, whether they send no token, a bad one or none at all", async () => {
    const cases: [string, () => Promise<RawSocket>][] = [
      [
        "no connectionParams frame",
        async () => {
          const s = socket();
          await s.opened;
          return s;
        },
      ],
      [
        "a bad token",
        async () => {
          const s = socket();
          await s.opened;
          s.authenticate("not-a-token");
          s.request(1, "subscription", "agent.onStatus", {});
          return s;
        },
      ],
      [
        "no connectionParams at all",
        async () => {
          const s = socket({ params: false });
          await s.opened;
          return s;
        },
      ],
    ];
    for (let round = 0; round < (LONG ? 30 : 1); round++) {
      for (const [name, open] of cases) {
        const started = Date.now();
        const s = await open();
        const { code } = await s.closedWithin();
        const took = Date.now() - started;
        log.attempt(
          "Unauthenticated connection held open",
          "closed (4401) after the auth timeout",
          code === 4401 && took >= LIMITS.authTimeoutMs - 50 && took < LIMITS.authTimeoutMs + 1_000,
          () => `${name}: ${code} after ${took} ms`,
        );
        if (name === "a bad token") expect(errorCode(s.answers(1)[0]?.json)).toBe("UNAUTHORIZED");
      }
    }
    expect(log.failures()).toEqual([]);
  });
});

describe("caps", () => {
  it("on subscriptions per connection: the one over gets TOO_MANY_REQUESTS, and stopping one frees its slot", async () => {
    const tenant = await createQuietTenant(app);
    const s = await signedIn(tenant.token);
    for (let id = 1; id <= LIMITS.maxSubscriptions; id++)
      expect((await subscribe(s, id)).json.result.data.data.type).toBe("snapshot");
    const capMessage = `at most ${LIMITS.maxSubscriptions} subscriptions per connection; stop one first`;
    for (let id = 100; id < (LONG ? 400 : 110); id++) {
      const refused = await subscribe(s, id);
      log.attempt(
        "Subscriptions over the per-connection cap",
        "TOO_MANY_REQUESTS",
        errorCode(refused.json) === "TOO_MANY_REQUESTS" && refused.json.error.message === capMessage,
        () => refused.text,
      );
      // Paced under the message rate, so every refusal is the cap's.
      await sleep(1_000 / LIMITS.messagesPerSecond + 5);
    }
    const refusal = s.answers(100).find((f) => f.json.error)!;
    expect(errorCode(refusal.json)).toBe("TOO_MANY_REQUESTS");
    expect(refusal.json.error.message).toBe(capMessage);
    s.send({ id: 1, method: "subscription.stop" });
    await eventually(
      () => app.http.connections.size,
      (n) => n === 1,
      "one connection",
    );
    await sleep(100);
    const reopened = await subscribe(s, 10_000);
    expect(reopened.json.result?.data?.data?.type, reopened.text).toBe("snapshot");
    expect(log.failures()).toEqual([]);
  });

  it("on connections per user and per tenant: the one over is answered TOO_MANY_REQUESTS and closed; closing one frees a place", async () => {
    const tenant = await createQuietTenant(app);
    const mine = await Promise.all(Array.from({ length: LIMITS.perUser }, () => signedIn(tenant.token)));
    for (const [i, s] of mine.entries()) expect((await subscribe(s, i + 1)).json.result.type).toBe("data");
    for (let i = 0; i < (LONG ? 50 : 3); i++) {
      const extra = await signedIn(tenant.token);
      const refused = await subscribe(extra, 1);
      const { code } = await extra.closedWithin();
      log.attempt(
        "Connections over the per-user cap",
        "TOO_MANY_REQUESTS, then closed",
        errorCode(refused.json) === "TOO_MANY_REQUESTS" && code === 4429,
        () => `${refused.text} / ${code}`,
      );
    }
    mine[0]!.close();
    await eventually(
      () => app.http.connections.connectionsOfUser(tenant.userId),
      (n) => n === LIMITS.perUser - 1,
      "a place freed",
    );
    expect((await subscribe(await signedIn(tenant.token), 1)).json.result.type).toBe("data");

    // A second user of the same tenant fills the tenant's cap.
    const { auth, db } = app.pulse.services;
    const colleague = await db.user.create({
      data: { tenantId: tenant.tenantId, email: `colleague-${randomUUID()}@example.test`, passwordHash: "x" },
    });
    const colleagueToken = await auth.issueSessionToken(
      await auth.openSession({ userId: colleague.id, tenantId: tenant.tenantId, email: colleague.email! }),
    );
    const theirs = await Promise.all(
      Array.from({ length: LIMITS.perTenant - LIMITS.perUser }, () => signedIn(colleagueToken)),
    );
    for (const [i, s] of theirs.entries()) expect((await subscribe(s, i + 1)).json.result.type).toBe("data");
    for (let i = 0; i < (LONG ? 50 : 3); i++) {
      const extra = await signedIn(colleagueToken);
      const refused = await subscribe(extra, 1);
      log.attempt(
        "Connections over the per-tenant cap",
        "TOO_MANY_REQUESTS",
        errorCode(refused.json) === "TOO_MANY_REQUESTS",
        () => refused.text,
      );
      expect(refused.json.error?.message).toBe(
        `at most ${LIMITS.perTenant} open connections per tenant; close one first`,
      );
    }
    expect(log.failures()).toEqual([]);
  });

  it("on share-link viewers: per link and per address, apart from the tenant's users, who still connect with viewers at their cap", async () => {
    const tenant = await createQuietTenant(app);
    const run = await app.pulse.services.runs.start(tenant.tenantId, ROLE);
    const link = await httpClient(app, tenant.token).share.create.mutate({ runId: run.id });
    const watch = async (address: string) => {
      const s = await signedIn(link.token, { address });
      return { s, answer: await subscribe(s, 1, "share.onRun") };
    };
    const refusedWith = async (address: string, message: string) => {
      const { s, answer } = await watch(address);
      const { code } = await s.closedWithin();
      const ok =
        errorCode(answer.json) === "TOO_MANY_REQUESTS" && answer.json.error.message === message && code === 4429;
      log.attempt(
        "Share-link viewers over their caps",
        "TOO_MANY_REQUESTS, then closed",
        ok,
        () => `${answer.text} / ${code}`,
      );
    };
    for (let round = 0; round < (LONG ? 20 : 1); round++) {
      const viewers = [await watch("10.98.0.1"), await watch("10.98.0.1")];
      for (const { answer } of viewers) expect(answer.json.result?.type, answer.text).toBe("data");
      await refusedWith("10.98.0.1", `at most ${LIMITS.perViewerIp} share-link viewers per address; close one first`);
      const third = await watch("10.98.0.2");
      expect(third.answer.json.result?.type, third.answer.text).toBe("data");
      await refusedWith("10.98.0.3", `at most ${LIMITS.perShareLink} viewers per share link; close one first`);
      // With the link's viewers at their cap, the tenant's own user still gets every one of their places.
      const mine = await Promise.all(Array.from({ length: LIMITS.perUser }, () => signedIn(tenant.token)));
      for (const [i, s] of mine.entries()) expect((await subscribe(s, i + 1)).json.result?.type).toBe("data");
      expect(app.http.connections.connectionsOfUser(tenant.userId)).toBe(LIMITS.perUser);
      for (const s of [...mine, third.s, ...viewers.map((v) => v.s)]) s.close();
      await eventually(
        () => app.http.connections.size,
        (n) => n === 0,
        "every connection closed",
      );
    }
    expect(log.failures()).toEqual([]);
  });

  it("on connections per address: the upgrade over the cap gets 429; other addresses are not affected", async () => {
    const address = "10.99.0.1";
    // Signed in (so the unauthenticated timeout leaves them open), spread over tenants so no
    // user or tenant cap is met first.
    const tenants = await Promise.all(
      Array.from({ length: Math.ceil(LIMITS.perIp / LIMITS.perUser) }, () => createQuietTenant(app)),
    );
    const held = await Promise.all(
      Array.from({ length: LIMITS.perIp }, (_, i) => signedIn(tenants[i % tenants.length]!.token, { address })),
    );
    for (const [i, s] of held.entries()) expect((await subscribe(s, i + 1)).json.result.type).toBe("data");
    for (let i = 0; i < (LONG ? 200 : 5); i++) {
      const status = await upgradeStatus(socket({ address }));
      log.attempt("Connections over the per-address cap", "429 before the upgrade", status === 429, () => `${status}`);
    }
    expect(await upgradeStatus(socket({ address: "10.99.0.2" }))).toBe(101);
    held[0]!.close();
    await sleep(100);
    expect(await upgradeStatus(socket({ address }))).toBe(101);
    expect(log.failures()).toEqual([]);
  });

  it("on connections per process: the upgrade over the cap gets 503 with Retry-After, whoever asks; room comes back as sockets close", async () => {
    const full = await startTestPulse({
      runWorkers: false,
      database: app.database,
      security: { trustProxy: true, ws: { perProcess: 3 } },
    });
    try {
      // Unauthenticated sockets count too: the cap is what the process holds, not who holds it.
      const held = Array.from({ length: 3 }, () => socket({}, full));
      await Promise.all(held.map((s) => s.opened));
      for (let i = 0; i < (LONG ? 100 : 3); i++) {
        const refused = await socket({}, full).opened.then(
          () => null,
          (error: UpgradeRefused) => error,
        );
        log.attempt(
          "Connections over the per-process cap",
          "503 with Retry-After before the upgrade",
          refused?.status === 503 && refused.retryAfter === "5",
          () => `${refused?.status}`,
        );
      }
      held[0]!.close();
      await eventually(
        () => full.http.connections.size,
        (n) => n === 2,
        "the closed socket to leave",
      );
      expect(await upgradeStatus(socket({}, full))).toBe(101);
      expect(log.failures()).toEqual([]);
    } finally {
      for (const s of sockets.splice(0)) s.close();
      await full.close();
    }
  });
});

describe("messages per second", () => {
  it("beyond the rate are answered TOO_MANY_REQUESTS for each request id; the connection recovers, and a flood is closed (1008)", async () => {
    const tenant = await createQuietTenant(app);
    const burst = 150;
    for (let round = 0; round < (LONG ? 40 : 1); round++) {
      const s = await signedIn(tenant.token);
      for (let i = 1; i <= burst; i++) s.request(i, "query", "agent.roles");
      // Refusals are answered at once; the requests let through wait for the connection's
      // session check, so the last request's answer says nothing about the first ones'.
      const ids = Array.from({ length: burst }, (_, i) => i + 1);
      await eventually(
        () => ids.filter((i) => s.answers(i).length === 0).length,
        (n) => n === 0,
        "an answer to every request",
        10_000,
      );
      let served = 0;
      for (let i = 1; i <= burst; i++) {
        const answer = s.answers(i)[0];
        if (answer?.json.result) served += 1;
        else
          log.attempt(
            "Message burst over the rate",
            "TOO_MANY_REQUESTS for each refused request, to retry within a second",
            errorCode(answer?.json) === "TOO_MANY_REQUESTS" && answer?.json.error.data.retryAfterSeconds === 1,
            () => answer?.text ?? `no answer to ${i}`,
          );
      }
      // The burst allowance is twice the rate per second (the connectionParams frame took one); the rest was refused.
      expect(served).toBeGreaterThanOrEqual(LIMITS.messagesPerSecond * 2 - 1);
      expect(served).toBeLessThan(LIMITS.messagesPerSecond * 2 + 10);
      await sleep(1_000);
      s.request("after", "query", "agent.roles");
      expect((await s.waitFor((f) => f.json?.id === "after", "a request after a pause")).json.result).toBeDefined();
      for (let i = 0; i < 400; i++) s.request(`flood-${i}`, "query", "agent.roles");
      const { code } = await s.closedWithin();
      log.attempt("Sustained message flood", "connection closed with 1008", code === 1008, () => `closed with ${code}`);
    }
    expect(log.failures()).toEqual([]);
    // The server is fine: a new connection is served at once.
    const next = await signedIn(tenant.token);
    next.request(1, "query", "agent.roles");
    expect((await next.waitFor((f) => f.json?.id === 1, "a fresh connection's answer")).json.result.type).toBe("data");
  });

  it("batches over the limit and oversized request ids are refused with BAD_REQUEST", async () => {
    const tenant = await createQuietTenant(app);
    const s = await signedIn(tenant.token);
    const batch = Array.from({ length: LIMITS.maxBatch + 1 }, (_, i) => ({
      id: i + 1,
      method: "query",
      params: { path: "agent.roles" },
    }));
    s.send(batch);
    const refused = await s.waitFor((f) => f.json?.id === null && Boolean(f.json.error), "the batch refusal");
    expect(refused.json.error.data.code).toBe("BAD_REQUEST");
    expect(refused.json.error.message).toBe(
      `a frame may batch at most ${LIMITS.maxBatch} requests (got ${LIMITS.maxBatch + 1})`,
    );
    s.request("x".repeat(65), "query", "agent.roles");
    const idRefused = await s.waitFor(
      (f) => f.json?.error?.message === "id: at most 64 characters",
      "the long id refusal",
    );
    expect(idRefused.json.id).toBeNull();
    s.send(batch.slice(0, LIMITS.maxBatch));
    await s.waitFor((f) => f.json?.id === LIMITS.maxBatch && f.json.result, "a batch within the limit");
  });
});

describe("floods of any kind of frame", () => {
  const ROUND = 100;
  const ROUNDS = 20;
  // What a flood may get from the server before it is closed: the burst allowance, the
  // refusals that close it, and two rounds of slack for tokens refilled while a slow machine reads.
  const BOUND = LIMITS.messagesPerSecond * 2 + REJECTIONS_BEFORE_CLOSE + 2 * ROUND;
  const oversizedBatch = JSON.stringify(
    Array.from({ length: LIMITS.maxBatch + 1 }, (_, i) => ({
      id: i + 1,
      method: "query",
      params: { path: "agent.roles" },
    })),
  );
  const longId = JSON.stringify({ id: "x".repeat(65), method: "query", params: { path: "agent.roles" } });
  const kinds: [string, (i: number) => string | Buffer][] = [
    ["oversized batches", () => oversizedBatch],
    ["long request ids", () => longId],
    ["malformed JSON", (i) => `{"id":${i},`],
    ["binary frames", () => Buffer.from([1, 2, 3])],
  ];
  const stops: [string, (i: number) => string][] = [
    ["subscription.stop frames", (i) => JSON.stringify({ id: i, method: "subscription.stop" })],
    [
      "batches of subscription.stop",
      (i) =>
        JSON.stringify(
          Array.from({ length: LIMITS.maxBatch }, (_, k) => ({ id: i * 100 + k, method: "subscription.stop" })),
        ),
    ],
  ];

  // The unauthenticated timeout must not end a flood before its sender is closed for flooding.
  let patient: TestPulse;
  beforeAll(async () => {
    patient = await startTestPulse({
      runWorkers: false,
      database: app.database,
      security: { trustProxy: true, ws: { ...LIMITS, authTimeoutMs: 600_000 } },
    });
  });
  afterAll(async () => {
    await patient?.close();
  });

  /**
   * Sends `frame` in rounds until the server closes the socket, and after each round waits
   * until the server has read it: `read(sent)` tells, from what came back. Counts frames,
   * never time; gives up after `ROUNDS` rounds, so a flood the server never closes fails.
   */
  async function flood(
    s: RawSocket,
    frame: (i: number) => string | Buffer,
    read: (round: number, sent: number) => boolean,
    marker?: (round: number) => unknown,
  ) {
    let sent = 0;
    for (let round = 0; round < ROUNDS && s.isOpen; round++) {
      for (let i = 0; i < ROUND; i++) s.ws.send(frame(sent++));
      if (marker) s.send(marker(round));
      await eventually(
        () => !s.isOpen || read(round, sent),
        (done) => done,
        `the server to read round ${round}`,
        30_000,
      );
    }
    const { code } = await s.closedWithin();
    return { code, sent, answers: s.frames.length };
  }

  function record(attack: string, outcome: { code: number; sent: number; answers: number }) {
    log.attempt(
      attack,
      `closed with 1008 within ${BOUND} frames, at most ${BOUND} answers`,
      outcome.code === 1008 && outcome.sent <= BOUND && outcome.answers <= BOUND,
      () => JSON.stringify(outcome),
    );
    log.observe(attack, `closed (${outcome.code}) after ${outcome.sent} frames, ${outcome.answers} answers`);
  }

  it("from a signed-in connection are closed with 1008 after a bounded number of frames and answers, stops included", async () => {
    const tenant = await createQuietTenant(patient);
    for (const [kind, frame] of [...kinds, ...stops]) {
      const s = socket({}, patient);
      await s.opened;
      s.authenticate(tenant.token);
      // The marker request is always answered: served, or refused over the rate.
      const outcome = await flood(
        s,
        frame,
        (round) => s.answers(`m-${round}`).length > 0,
        (round) => ({ id: `m-${round}`, method: "query", params: { path: "agent.roles" } }),
      );
      record(`Flood of ${kind} (signed in)`, outcome);
      expect(outcome, kind).toMatchObject({ code: 1008 });
      expect(outcome.sent, kind).toBeLessThanOrEqual(BOUND);
      expect(outcome.answers, kind).toBeLessThanOrEqual(BOUND);
    }
    expect(log.failures()).toEqual([]);
    // The server is fine: a new connection is served at once.
    const next = socket({}, patient);
    await next.opened;
    next.authenticate(tenant.token);
    next.request(1, "query", "agent.roles");
    expect((await next.waitFor((f) => f.json?.id === 1, "a fresh connection's answer")).json.result.type).toBe("data");
  });

  it("before connectionParams are closed with 1008 after a bounded number of frames and answers", async () => {
    for (const [kind, frame] of kinds) {
      const s = socket({}, patient);
      await s.opened;
      // Each of these frames is answered once (refused, or an error), and none is taken for connectionParams.
      const outcome = await flood(s, frame, (_round, sent) => s.frames.length >= sent);
      record(`Flood of ${kind} (before connectionParams)`, outcome);
      expect(outcome, kind).toMatchObject({ code: 1008 });
      expect(outcome.sent, kind).toBeLessThanOrEqual(BOUND);
      expect(outcome.answers, kind).toBeLessThanOrEqual(BOUND);
    }
    expect(log.failures()).toEqual([]);
  });

  it("over the rate still stop the subscriptions they name", async () => {
    const tenant = await createQuietTenant(patient);
    const s = socket({}, patient);
    await s.opened;
    s.authenticate(tenant.token);
    s.request(1, "subscription", "agent.onStatus", {});
    await s.waitFor((f) => f.json?.id === 1 && f.json.result?.type === "data", "the subscription's snapshot");
    // The budget spent (three times the burst allowance), then the stop.
    for (let i = 0; i < LIMITS.messagesPerSecond * 6; i++) s.send("PING");
    s.send({ id: 1, method: "subscription.stop" });
    await s.waitFor((f) => f.json?.id === 1 && f.json.result?.type === "stopped", "the subscription to stop");
    expect(s.frames.some((f) => errorCode(f.json) === "TOO_MANY_REQUESTS")).toBe(true);
    expect(s.answers(1).filter((f) => f.json.error)).toEqual([]);
  });
});

describe("subscriptions over HTTP", () => {
  it("are server-sent events under their own guard: without a valid token, an UNAUTHORIZED event and the end", async () => {
    const res = await fetch(`${app.baseUrl}${TRPC_PATH}/agent.onStatus?input=${encodeURIComponent("{}")}`, {
      headers: { authorization: "Bearer not-a-token", accept: "text/event-stream" },
    });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const text = await res.text();
    expect(text).toContain("event: serialized-error");
    expect(text).toContain("UNAUTHORIZED");
    expect(text).not.toContain('"snapshot"');
  });
});
