import { randomUUID } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { AuthService } from "../../server/auth/auth-service";
import {
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  OpenConnections,
  startTestPulse,
  TEST_SECRET,
  type TestPulse,
} from "../harness";
import { AttackLog, httpClient, postRunEvent, sleep } from "./security-kit";

/**
 * External agents report over HTTP: one call per event, authenticated by the run's report
 * token, validated by the same schema, published through the same bus; a token for one run
 * touches no other run or tenant; every refusal has the right status and names the field.
 */

const LONG = process.env.PULSE_LONG === "1";
// The long run (`npm run test:security`) scales every count up; its tests get time to match.
if (LONG) vi.setConfig({ testTimeout: 900_000 });
const log = new AttackLog("external-reports", LONG);
const ROLE = "py-agent";
const RATE = 20;

let app: TestPulse;
/** Clients and subscriptions a test opens, closed after it. */
const open = new OpenConnections();
const { clients, collectors } = open;

beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    externalAgentRoles: [ROLE, "other-agent"],
    security: { reportsPerSecond: RATE },
  });
});
afterEach(async () => {
  await open.closeAll();
});
afterAll(async () => {
  await log.save();
  await app?.close();
});

/** What an agent in any language sends (see `postRunEvent`). */
const report = (
  runId: string,
  token: string | null,
  body: unknown,
  headers: Record<string, string> = {},
  method = "POST",
) => postRunEvent(app, runId, token, body, headers, method);

/** A tenant with one external run, its report token, and an HTTP client. */
async function externalRun(role = ROLE) {
  const tenant = await createQuietTenant(app);
  const http = httpClient(app, tenant.token);
  const started = await http.agent.run.mutate({ agentRole: role });
  return { tenant, http, runId: started.runId, token: started.reportToken, started };
}

describe("an external agent", () => {
  it("reports its run's whole life with one HTTP call per event, answered at once, and the tenant's dashboards see it through the same stream", async () => {
    const { tenant, http, runId, token, started } = await externalRun();
    expect(started.status).toBe("queued");
    expect(started.reportToken).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(JSON.stringify(started.run)).not.toContain(token);
    const c = connectClient(app, tenant.token);
    clients.push(c);
    const live = collect((h) => c.trpc.agent.onStatus.subscribe({ runId }, h));
    collectors.push(live);
    await eventually(
      () => live.items.length,
      (n) => n === 1,
      "the run's snapshot",
    );

    const reports = [
      { type: "agent:active" },
      { type: "agent:progress", progress: 10, message: "Reading the brief", phase: "starting" },
      { type: "agent:step", stepId: "fetch", name: "Fetch sources", status: "started" },
      { type: "agent:step", stepId: "fetch", name: "Fetch sources", status: "completed" },
      { type: "agent:output", chunk: "# Findings\n" },
      { type: "agent:log", level: "info", message: "used 3 sources" },
      { type: "agent:progress", progress: 90, message: "Writing" },
      { type: "agent:completed" },
    ];
    const ids: string[] = [];
    for (const body of reports) {
      const answer = await report(runId, token, body);
      expect(answer.status, JSON.stringify(body)).toBe(202);
      expect(answer.json).toEqual({ id: expect.stringMatching(/^\d+-\d+$/), seq: expect.any(Number) });
      ids.push(answer.json.id);
    }
    await eventually(
      () => live.events().length,
      (n) => n === reports.length,
      "every report on the dashboard",
    );
    expect(live.events().map((i) => i.id)).toEqual(ids);
    expect(live.events().map((i) => i.data.type)).toEqual(reports.map((r) => r.type));
    expect(live.events()[2]!.data).toMatchObject({
      tenantId: tenant.tenantId,
      runId,
      stepId: `${runId}:1:fetch`,
      agentRole: ROLE,
      attempt: 1,
    });

    const run = await http.agent.get.query({ runId });
    expect(run).toMatchObject({ status: "completed", progress: 100, output: "# Findings\n" });
    expect(run.steps).toEqual([
      expect.objectContaining({ id: `${runId}:1:fetch`, name: "Fetch sources", status: "completed" }),
    ]);
    expect((await http.agent.logs.query({ runId })).logs.map((l) => l.message)).toEqual(["used 3 sources"]);

    const late = await report(runId, token, { type: "agent:progress", progress: 50, message: "late" });
    expect(late.status).toBe(409);
    expect(late.json.error).toEqual({ code: "CONFLICT", message: "run is completed; it takes no more reports" });
  });

  it("is refused with the right status and a message naming the field", async () => {
    const { runId, token } = await externalRun();
    const other = await externalRun("other-agent");
    const { services } = app.pulse;
    const shortLived = new AuthService(services, {
      secret: TEST_SECRET,
      sessionTtlSeconds: 60,
      reportTokenTtlSeconds: 1,
    });
    const expiring = await shortLived.issueReportToken({ tenantId: other.tenant.tenantId, runId: other.runId });
    const session = other.tenant.token;
    const { token: shareToken } = await httpClient(app, other.tenant.token).share.create.mutate({ runId: other.runId });
    const wrongSecret = await new AuthService(services, {
      secret: new TextEncoder().encode("x".repeat(40)),
      sessionTtlSeconds: 60,
    }).issueReportToken({ tenantId: other.tenant.tenantId, runId: other.runId });
    await sleep(2_100);

    const cases: { name: string; send: () => ReturnType<typeof report>; status: number; message?: string | RegExp }[] =
      [
        {
          name: "progress before active",
          send: () => report(runId, token, { type: "agent:progress", progress: 1, message: "x" }),
          status: 409,
          message: 'run is queued: report {"type":"agent:active"} first',
        },
        {
          name: "progress over 100",
          send: () => report(runId, token, { type: "agent:progress", progress: 150, message: "x" }),
          status: 400,
          message: /^progress: /,
        },
        {
          name: "unknown field",
          send: () => report(runId, token, { type: "agent:log", level: "info", message: "x", colour: "red" }),
          status: 400,
          message: "colour: unknown field",
        },
        {
          name: "tenantId smuggled",
          send: () => report(runId, token, { type: "agent:active", tenantId: other.tenant.tenantId }),
          status: 400,
          message: "tenantId: set by the server from the run token; leave it out",
        },
        {
          name: "runId smuggled",
          send: () => report(runId, token, { type: "agent:active", runId: other.runId }),
          status: 400,
          message: "runId: set by the server from the run token; leave it out",
        },
        {
          name: "a type agents may not send",
          send: () => report(runId, token, { type: "agent:queued" }),
          status: 400,
          message: /^type: /,
        },
        {
          name: "context events",
          send: () => report(runId, token, { type: "context:status_changed", status: "approved" }),
          status: 400,
          message: /^type: /,
        },
        { name: "no type", send: () => report(runId, token, { progress: 1 }), status: 400, message: /^type: / },
        {
          name: "wrong type of field",
          send: () => report(runId, token, { type: "agent:log", level: "loud", message: 5 }),
          status: 400,
          message: /level: .*; message: /,
        },
        {
          name: "step id with a slash",
          send: () => report(runId, token, { type: "agent:step", stepId: "../x", name: "x", status: "started" }),
          status: 400,
          message: /^stepId: /,
        },
        {
          name: "not JSON",
          send: () => report(runId, token, "{not json"),
          status: 400,
          message: "body: must be one JSON object",
        },
        {
          name: "a JSON array",
          send: () => report(runId, token, [{ type: "agent:active" }]),
          status: 400,
          message: /^input: /,
        },
        { name: "no token", send: () => report(runId, null, { type: "agent:active" }), status: 401 },
        { name: "a garbage token", send: () => report(runId, "garbage", { type: "agent:active" }), status: 401 },
        {
          name: "an expired report token",
          send: () => report(other.runId, expiring, { type: "agent:active" }),
          status: 401,
        },
        {
          name: "a report token signed with another secret",
          send: () => report(other.runId, wrongSecret, { type: "agent:active" }),
          status: 401,
        },
        { name: "a session token", send: () => report(other.runId, session, { type: "agent:active" }), status: 401 },
        { name: "a share token", send: () => report(other.runId, shareToken, { type: "agent:active" }), status: 401 },
        {
          name: "the run in the URL is another tenant's",
          send: () => report(other.runId, token, { type: "agent:active" }),
          status: 404,
          message: "run not found",
        },
        {
          name: "the run in the URL does not exist",
          send: () => report(randomUUID(), token, { type: "agent:active" }),
          status: 404,
          message: "run not found",
        },
        { name: "GET", send: () => report(runId, token, null, {}, "GET"), status: 405 },
        {
          name: "text/plain",
          send: () => report(runId, token, JSON.stringify({ type: "agent:active" }), { "content-type": "text/plain" }),
          status: 415,
          message: "content-type: must be application/json",
        },
        {
          name: "a body over the limit",
          send: () => report(runId, token, { type: "agent:output", chunk: "x".repeat(70 * 1024) }),
          status: 413,
        },
      ];
    for (const c of cases) {
      const answer = await c.send();
      const messageOk =
        c.message === undefined ||
        (typeof c.message === "string"
          ? answer.json?.error?.message === c.message
          : c.message.test(answer.json?.error?.message ?? ""));
      log.attempt(
        "Malformed, misdirected or unauthenticated agent report",
        "4xx with a message naming the field; nothing published",
        answer.status === c.status && messageOk,
        () => `${c.name}: ${answer.status} ${answer.text.slice(0, 200)}`,
      );
      expect({ name: c.name, status: answer.status, messageOk }).toEqual({
        name: c.name,
        status: c.status,
        messageOk: true,
      });
    }
    // Nothing of the above reached the other tenant's run.
    expect(await app.pulse.services.runs.get(other.tenant.tenantId, other.runId)).toMatchObject({
      status: "queued",
      seq: 1,
    });
    expect(log.failures()).toEqual([]);
  });

  it("is limited to a number of reports per second per run, answered 429 with Retry-After", async () => {
    const { runId, token } = await externalRun();
    expect((await report(runId, token, { type: "agent:active" })).status).toBe(202);
    const startedAt = Date.now();
    // Waves of four seconds' worth at once, until one is refused: a busy machine may serve a
    // wave slowly enough for the bucket to refill, but not ten waves in a row.
    const answers: Awaited<ReturnType<typeof report>>[] = [];
    for (let wave = 0; wave < 10 && !answers.some((a) => a.status === 429); wave++) {
      answers.push(
        ...(await Promise.all(
          Array.from({ length: RATE * 4 }, (_, i) =>
            report(runId, token, { type: "agent:log", level: "info", message: `line ${wave}.${i}` }),
          ),
        )),
      );
    }
    const elapsedS = (Date.now() - startedAt) / 1000;
    const limited = answers.filter((a) => a.status === 429);
    // A burst of twice the rate, plus what the rate refilled while the burst was served.
    expect(answers.filter((a) => a.status === 202).length).toBeLessThanOrEqual(
      RATE * 2 + Math.ceil(elapsedS * RATE) + 1,
    );
    expect(limited.length).toBeGreaterThan(0);
    for (const a of limited) {
      log.attempt(
        "Report flood on one run",
        "429 with Retry-After",
        a.json.error.code === "TOO_MANY_REQUESTS" && Number(a.headers.get("retry-after")) >= 1,
      );
    }
    await sleep(1_100);
    expect((await report(runId, token, { type: "agent:log", level: "info", message: "after a pause" })).status).toBe(
      202,
    );
  });
});

describe("a report token", () => {
  it("cannot touch another run or another tenant: every attempt is 404 or 400 and changes nothing", async () => {
    const mine = await externalRun();
    const victim = await externalRun();
    const mySecond = { runId: (await mine.http.agent.run.mutate({ agentRole: "other-agent" })).runId };
    expect((await report(victim.runId, victim.token, { type: "agent:active" })).status).toBe(202);
    const before = await app.pulse.services.runs.get(victim.tenant.tenantId, victim.runId);
    const secondBefore = await app.pulse.services.runs.get(mine.tenant.tenantId, mySecond.runId);
    const bodies = [
      { type: "agent:active" },
      { type: "agent:progress", progress: 99, message: "hijacked" },
      { type: "agent:output", chunk: "hijacked" },
      { type: "agent:completed" },
      { type: "agent:failed", error: "hijacked" },
    ];
    const rounds = LONG ? 400 : 4;
    for (let round = 0; round < rounds; round++) {
      for (const body of bodies) {
        for (const target of [victim.runId, mySecond.runId, randomUUID()]) {
          const answer = await report(target, mine.token, body);
          log.attempt(
            "Report token used on another run or tenant",
            "404 run not found, nothing published",
            answer.status === 404 && answer.json?.error?.message === "run not found",
            () => `${answer.status} ${answer.text}`,
          );
        }
        const smuggled = await report(mine.runId, mine.token, {
          ...body,
          tenantId: victim.tenant.tenantId,
          runId: victim.runId,
        });
        log.attempt(
          "Report naming another tenant's run in its body",
          "400 naming the field (429 past the run's rate), nothing published",
          smuggled.status === 400 || smuggled.status === 429,
          () => `${smuggled.status} ${smuggled.text}`,
        );
      }
    }
    expect(await app.pulse.services.runs.get(victim.tenant.tenantId, victim.runId)).toEqual(before);
    expect(await app.pulse.services.runs.get(mine.tenant.tenantId, mySecond.runId)).toEqual(secondBefore);
    expect(log.failures()).toEqual([]);
  });
});

describe("a run of a role Pulse runs itself", () => {
  it("gets no report token, and takes no report even with a validly signed one: 403, nothing published", async () => {
    const tenant = await createQuietTenant(app);
    const started = await httpClient(app, tenant.token).agent.run.mutate({ agentRole: "client-researcher" });
    expect(started.reportToken).toBeNull();
    const { auth, runs, stream } = app.pulse.services;
    const forged = await auth.issueReportToken({ tenantId: tenant.tenantId, runId: started.runId });
    const before = await runs.get(tenant.tenantId, started.runId);
    const streamed = (await stream.readAfter(tenant.tenantId, "0-0", 1000)).length;
    const bodies = [
      { type: "agent:active" },
      { type: "agent:output", chunk: "forged" },
      { type: "agent:completed" },
      { type: "agent:progress", progress: 150 },
    ];
    for (const body of bodies) {
      const answer = await report(started.runId, forged, body);
      log.attempt(
        "Report token for a run Pulse runs itself",
        "403 FORBIDDEN, nothing published",
        answer.status === 403 && answer.json?.error?.code === "FORBIDDEN",
        () => `${answer.status} ${answer.text}`,
      );
    }
    expect(await runs.get(tenant.tenantId, started.runId)).toEqual(before);
    expect((await stream.readAfter(tenant.tenantId, "0-0", 1000)).length).toBe(streamed);
    expect(log.get("Report token for a run Pulse runs itself")?.failures).toBe(0);
  });
});
