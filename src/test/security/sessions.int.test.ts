import { generateKeyPair, SignJWT, decodeJwt } from "jose";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { compareStreamIds } from "../../server/events/schema";
import {
  AgentRemote,
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  isTick,
  OpenConnections,
  startTestPulse,
  TEST_SECRET,
  type Collector,
  type TestClient,
  type TestPulse,
} from "../harness";
import { AttackLog, errorCode, failureOf, httpClient, rawSocket, sleep, type RawSocket } from "./security-kit";

/**
 * Sessions and tokens: JWTs signed and verified with jose, HS256 pinned, issuer, audience
 * and expiry checked; the WebSocket's token only in connectionParams; a token expiring on
 * an open connection refreshed by a reconnect that loses nothing, or ending its
 * subscriptions after a short grace; logout and removed users ending open connections
 * within seconds, on every replica, by a message (the database safety check is a minute away).
 */

const LONG = process.env.PULSE_LONG === "1";
// The long run (`npm run test:security`) scales every count up; its tests get time to match.
if (LONG) vi.setConfig({ testTimeout: 900_000 });
const log = new AttackLog("sessions", LONG);
const ticker = new AgentRemote("ticker");
/** Short lifetimes so expiry happens inside a test: 3 s tokens, refreshed 1.5 s before, 1 s grace. */
const SOCKET_TTL_S = 3;
const GRACE_MS = 1_000;
/** Slack for comparing the test's clock readings with the server's sweep. */
const CLOCK_SLACK_MS = 200;

let app: TestPulse;
/** Clients and subscriptions a test opens, closed after it. */
const open = new OpenConnections();
const { clients, collectors } = open;
const sockets: RawSocket[] = [];

beforeAll(async () => {
  app = await startTestPulse({
    agents: [ticker.definition],
    auth: { socketTokenTtlSeconds: SOCKET_TTL_S },
    // The safety check keeps its default (a minute): logouts and removals below end sockets by message.
    security: { ws: { tokenRefreshLeadMs: 1_500, tokenGraceMs: GRACE_MS, authTimeoutMs: 2_000 } },
  });
});
afterEach(async () => {
  ticker.finish();
  for (const s of sockets.splice(0)) s.close();
  await open.closeAll();
  await sleep(50);
  ticker.reset();
});
afterAll(async () => {
  await log.save();
  await app?.close();
});

function client(token: string, options?: Parameters<typeof connectClient>[2]): TestClient {
  const c = connectClient(app, token, options);
  clients.push(c);
  return c;
}

function watch(c: TestClient, input: { lastEventId?: string } = {}): Collector {
  const collector = collect((h) => c.trpc.agent.onStatus.subscribe(input, h));
  collectors.push(collector);
  return collector;
}

function socket(options?: Parameters<typeof rawSocket>[1]): RawSocket {
  const s = rawSocket(app, options);
  sockets.push(s);
  return s;
}

/** A run of the ticker for `tenant`, ticking until `finish()`. */
async function startTicking(c: TestClient): Promise<string> {
  const { runId } = await c.trpc.agent.run.mutate({ agentRole: ticker.role });
  return runId;
}

describe("tokens", () => {
  it("are HS256 JWTs with issuer, audience and expiry checked: forged, re-signed, expired, misdirected and tampered tokens open nothing", async () => {
    const tenant = await createQuietTenant(app);
    const other = await createQuietTenant(app);
    const now = Math.floor(Date.now() / 1000);
    const claims = { tid: tenant.tenantId, sid: tenant.session.sessionId, email: tenant.email };
    const sign = (alg: string, key: Parameters<SignJWT["sign"]>[0], edit: (jwt: SignJWT) => SignJWT = (j) => j) =>
      edit(
        new SignJWT(claims)
          .setProtectedHeader({ alg, typ: "JWT" })
          .setSubject(tenant.userId)
          .setIssuer("pulse")
          .setAudience("pulse:session")
          .setIssuedAt(now)
          .setExpirationTime(now + 600),
      ).sign(key);
    const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const [head, body] = tenant.token.split(".") as [string, string, string];
    const payload = JSON.parse(Buffer.from(body, "base64url").toString());
    const rsa = await generateKeyPair("RS256");
    const { token: reportToken } = await (async () => ({
      token: await app.pulse.services.auth.issueReportToken({ tenantId: tenant.tenantId, runId: "r-1" }),
    }))();

    const forged: Record<string, string> = {
      "alg none (unsigned)": `${b64({ alg: "none", typ: "JWT" })}.${body}.`,
      "HS512 with the right secret": await sign("HS512", TEST_SECRET),
      "HS384 with the right secret": await sign("HS384", TEST_SECRET),
      "RS256 with an attacker's key": await sign("RS256", rsa.privateKey),
      "HS256 with another secret": await sign(
        "HS256",
        new TextEncoder().encode("another-secret-that-is-at-least-32-characters"),
      ),
      "another issuer": await sign("HS256", TEST_SECRET, (j) => j.setIssuer("evil")),
      "another audience": await sign("HS256", TEST_SECRET, (j) => j.setAudience("pulse:admin")),
      expired: await sign("HS256", TEST_SECRET, (j) => j.setIssuedAt(now - 7200).setExpirationTime(now - 3600)),
      "no typ header": await new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(tenant.userId)
        .setIssuer("pulse")
        .setAudience("pulse:session")
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(TEST_SECRET),
      "tampered tenant (signature of the original)": `${head}.${b64({ ...payload, tid: other.tenantId })}.${tenant.token.split(".")[2]}`,
      "signature stripped": `${head}.${body}.`,
      "another user's session id, correctly signed": await sign("HS256", TEST_SECRET, (j) =>
        j.setSubject(other.userId),
      ),
      "a run report token used as a session": reportToken,
      "oversized (8 KiB)": `${head}.${"A".repeat(8_192)}.${body}`,
      garbage: "not.a.token",
    };
    // The genuine token works on both paths, so every refusal below is the token's fault.
    expect((await httpClient(app, tenant.token).agent.list.query()).runs).toEqual([]);

    for (const [name, token] of Array.from({ length: LONG ? 40 : 1 }, () => Object.entries(forged)).flat()) {
      const overHttp = await failureOf(httpClient(app, token).agent.list.query());
      log.attempt(
        "Forged or misdirected JWT over HTTP",
        "401 UNAUTHORIZED",
        overHttp?.data?.httpStatus === 401,
        () => `${name}: ${overHttp?.message ?? "accepted"}`,
      );
      const ws = socket();
      await ws.opened;
      ws.authenticate(token);
      ws.request(1, "subscription", "agent.onStatus", {});
      const answer = await ws.waitFor(
        (f) => f.json?.id === 1 && (f.json.error || f.json.result?.type === "data"),
        `the answer for ${name}`,
      );
      log.attempt(
        "Forged or misdirected JWT on the WebSocket",
        "UNAUTHORIZED, no data",
        errorCode(answer.json) === "UNAUTHORIZED",
        () => `${name}: ${answer.text.slice(0, 200)}`,
      );
      // Closed at once, so the address never meets its connection cap.
      ws.close();
      await ws.closedWithin();
    }
    expect(log.failures()).toEqual([]);
  });

  it("reach the WebSocket only through connectionParams: a token in the URL, a cookie or an Authorization header on the upgrade opens nothing", async () => {
    const tenant = await createQuietTenant(app);
    const ways: [string, () => RawSocket][] = [
      ["token in the query string", () => socket({ params: false, query: `token=${tenant.token}` })],
      ["token in the query string beside connectionParams=1", () => socket({ query: `token=${tenant.token}` })],
      [
        "session cookie on the upgrade",
        () => socket({ params: false, headers: { cookie: `pulse_session=${tenant.token}` } }),
      ],
      [
        "Authorization header on the upgrade",
        () => socket({ params: false, headers: { authorization: `Bearer ${tenant.token}` } }),
      ],
    ];
    for (const [name, open] of Array.from({ length: LONG ? 50 : 1 }, () => ways).flat()) {
      const ws = open();
      await ws.opened;
      // With connectionParams=1 the first frame is the params: send empty ones, as a client without a token would.
      if (ws.ws.url.includes("connectionParams=1")) ws.send({ method: "connectionParams", data: {} });
      ws.request(1, "subscription", "agent.onStatus", {});
      const answer = await ws.waitFor(
        (f) => f.json?.id === 1 && (f.json.error || f.json.result?.type === "data"),
        `the answer for ${name}`,
      );
      expect(
        log.attempt(
          "Token outside connectionParams",
          "UNAUTHORIZED",
          errorCode(answer.json) === "UNAUTHORIZED",
          () => `${name}: ${answer.text}`,
        ),
        name,
      ).toBe(true);
      ws.close();
      await ws.closedWithin();
    }
  });
});

describe("a token expiring on an open WebSocket", () => {
  it("is replaced before it expires: the server closes the socket (4000), the client reconnects with a fresh token and resumes by id, losing and repeating nothing", async () => {
    const tenant = await createQuietTenant(app);
    const http = httpClient(app, tenant.token);
    let opens = 0;
    const c = client(tenant.token, {
      socketToken: async () => (await http.auth.socketToken.query()).token,
      onOpen: () => (opens += 1),
    });
    const live = watch(c);
    await eventually(
      () => live.items.length,
      (n) => n === 1,
      "the snapshot",
    );

    await startTicking(c);
    // Several token lifetimes of steady events: each refresh happens while events flow.
    let granted = 0;
    const pace = setInterval(() => {
      ticker.tick(1);
      granted += 1;
    }, 40);
    try {
      await sleep(SOCKET_TTL_S * (LONG ? 10 : 2) * 1000);
    } finally {
      clearInterval(pace);
    }
    ticker.finish();
    await eventually(() => live.items.some((i) => i.data.type === "agent:completed"), Boolean, "completion", 15_000);

    const ok =
      opens >= (LONG ? 8 : 2) &&
      live.errors.length === 0 &&
      live.items.filter((i) => i.data.type === "snapshot" || i.data.type === "resync").length === 1;
    log.attempt(
      "Token expiring mid-connection, client refreshing",
      "reconnect with a fresh token, no loss, no duplicate",
      ok,
      () => `opens ${opens}, errors ${live.errors.length}`,
    );
    expect(opens).toBeGreaterThanOrEqual(LONG ? 8 : 2);
    expect(live.errors).toEqual([]);
    expect(live.items.filter((i) => i.data.type === "snapshot" || i.data.type === "resync")).toHaveLength(1);
    for (let i = 1; i < live.items.length; i++)
      expect(compareStreamIds(live.items[i]!.id, live.items[i - 1]!.id)).toBe(1);
    const fromStream = (await app.pulse.services.stream.readAfter(tenant.tenantId, live.items[0]!.id, 10_000)).map(
      (e) => e.id,
    );
    expect(live.events().map((i) => i.id)).toEqual(fromStream);
    expect(
      live
        .events()
        .filter((i) => i.data.type === "agent:progress")
        .map((i) => i.data.message),
    ).toEqual(Array.from({ length: granted }, (_, k) => `tick ${k + 1}`));
  });

  it("that is not replaced ends the connection's subscriptions with UNAUTHORIZED within the grace after expiry, and the socket closes", async () => {
    const tenant = await createQuietTenant(app);
    const { token } = await app.pulse.services.auth.issueSocketToken(tenant.session);
    const expiresAt = decodeJwt(token).exp! * 1000;
    // The same token on every reconnect, as a client that cannot get a new one.
    const c = client(tenant.token, { socketToken: async () => token });
    const live = watch(c);
    await eventually(
      () => live.items.length,
      (n) => n === 1,
      "the snapshot",
    );
    await startTicking(c);
    ticker.tick(1);
    await eventually(() => live.items.some((i) => isTick(i, 1)), Boolean, "tick 1 before expiry");

    await eventually(
      () => live.errors.length,
      (n) => n === 1,
      "the subscription to end",
      15_000,
    );
    const endedAt = Date.now();
    const error = live.errors[0] as { data?: { code?: string }; message?: string };
    const received = live.items.length;
    ticker.tick(2);
    await sleep(500);
    const ok =
      error.data?.code === "UNAUTHORIZED" &&
      endedAt >= expiresAt + GRACE_MS - CLOCK_SLACK_MS &&
      endedAt <= expiresAt + GRACE_MS + 2_000 &&
      live.items.length === received;
    log.attempt(
      "Token expiring mid-connection, client not refreshing",
      "subscriptions end with UNAUTHORIZED within the grace",
      ok,
      () => `ended ${endedAt - expiresAt} ms after expiry: ${error.message}`,
    );
    expect(error.data?.code).toBe("UNAUTHORIZED");
    expect(error.message).toBe("token expired: reconnect with a fresh token");
    expect(endedAt).toBeGreaterThanOrEqual(expiresAt + GRACE_MS - CLOCK_SLACK_MS);
    expect(endedAt).toBeLessThanOrEqual(expiresAt + GRACE_MS + 2_000);
    expect(live.items).toHaveLength(received);
    // And the expired token opens nothing new.
    const again = watch(c);
    await eventually(
      () => again.errors.length,
      (n) => n === 1,
      "a new subscription's refusal",
    );
    expect(errorCode(again.errors[0])).toBe("UNAUTHORIZED");
  });
});

describe("ending a session", () => {
  it("by logging out ends that session's tokens at once over HTTP and its open subscriptions within seconds; the user's other sessions go on", async () => {
    const tenant = await createQuietTenant(app);
    const anonymous = httpClient(app);
    const { token: second } = await anonymous.auth.login.mutate({
      email: tenant.email,
      password: "correct horse battery",
    });
    const leaving = watch(client(second));
    const staying = watch(client(tenant.token));
    await eventually(
      () => leaving.items.length + staying.items.length,
      (n) => n === 2,
      "both snapshots",
    );

    const loggedOutAt = Date.now();
    await httpClient(app, second).auth.logout.mutate();
    const refused = await failureOf(httpClient(app, second).agent.list.query());
    log.attempt("Token used after logout (HTTP)", "401 at once", refused?.data?.httpStatus === 401);
    expect(refused?.data?.httpStatus).toBe(401);

    await eventually(
      () => leaving.errors.length,
      (n) => n === 1,
      "the logged-out subscription to end",
    );
    const took = Date.now() - loggedOutAt;
    log.attempt(
      "Open subscription after logout",
      "ends with UNAUTHORIZED within seconds",
      errorCode(leaving.errors[0]) === "UNAUTHORIZED" && took < 3_000,
      () => `${took} ms`,
    );
    expect(errorCode(leaving.errors[0])).toBe("UNAUTHORIZED");
    expect((leaving.errors[0] as Error).message).toBe("your session has ended: sign in again");

    // The registration's own session is untouched.
    const c = clients.at(-1)!;
    await startTicking(c);
    ticker.tick(1);
    await eventually(() => staying.items.some((i) => isTick(i, 1)), Boolean, "the other session still live");
    expect(staying.errors).toEqual([]);
    expect((await httpClient(app, tenant.token).agent.list.query()).runs).toHaveLength(1);
  });

  it("by removing the user ends their open subscriptions within seconds and their tokens at once", async () => {
    const tenant = await createQuietTenant(app);
    const live = watch(client(tenant.token));
    await eventually(
      () => live.items.length,
      (n) => n === 1,
      "the snapshot",
    );
    const removedAt = Date.now();
    await app.pulse.services.auth.removeUser(tenant.userId);
    const refused = await failureOf(httpClient(app, tenant.token).agent.list.query());
    expect(refused?.data?.httpStatus).toBe(401);
    await eventually(
      () => live.errors.length,
      (n) => n === 1,
      "the removed user's subscription to end",
    );
    const took = Date.now() - removedAt;
    log.attempt(
      "Open subscription of a removed user",
      "ends with UNAUTHORIZED within seconds",
      errorCode(live.errors[0]) === "UNAUTHORIZED" && took < 3_000,
      () => `${took} ms`,
    );
    expect(errorCode(live.errors[0])).toBe("UNAUTHORIZED");
  });

  it("on one replica ends the session's subscriptions on another within seconds", async () => {
    const replica = await startTestPulse({ runWorkers: false, database: app.database, prefix: app.prefix });
    try {
      const tenant = await createQuietTenant(app);
      const elsewhere = connectClient(replica, tenant.token);
      clients.push(elsewhere);
      const live = collect((h) => elsewhere.trpc.agent.onStatus.subscribe({}, h));
      collectors.push(live);
      await eventually(
        () => live.items.length,
        (n) => n === 1,
        "the snapshot on the other replica",
      );
      const loggedOutAt = Date.now();
      await httpClient(app, tenant.token).auth.logout.mutate();
      await eventually(
        () => live.errors.length,
        (n) => n === 1,
        "the subscription on the other replica to end",
      );
      const took = Date.now() - loggedOutAt;
      log.attempt(
        "Logout on another replica",
        "ends open subscriptions within seconds",
        errorCode(live.errors[0]) === "UNAUTHORIZED" && took < 4_000,
        () => `${took} ms`,
      );
      expect(errorCode(live.errors[0])).toBe("UNAUTHORIZED");
    } finally {
      await replica.close();
    }
  });
});
