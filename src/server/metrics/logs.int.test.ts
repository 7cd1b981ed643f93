import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTRPCClient, httpLink } from "@trpc/client";
import { TRPC_PATH } from "../http-server";
import { createLogger, type Logger } from "../logger";
import type { AppRouter } from "../trpc/root";
import {
  AgentRemote,
  collect,
  connectClient,
  eventually,
  fastDemoAgents,
  startTestPulse,
  TEST_SECRET,
  type TestPulse,
} from "../../test/harness";
import { CapturedLog } from "../../test/captured-log";
import { postRunEvent } from "../../test/security/security-kit";

/**
 * Every log line Pulse writes at "trace" while a user signs in (once wrongly), fetches a
 * socket token, opens a WebSocket with it, starts runs, and an external agent reports with
 * its run token: none of those secrets may appear, and the lines about the connection and
 * the agent run carry the ids that tie them together.
 */

const EXTERNAL_ROLE = "log-external";
const agent = new AgentRemote("log-agent");

const captured = new CapturedLog();
let logger: Logger;
let app: TestPulse;

beforeAll(async () => {
  logger = createLogger("trace", "pulse", captured);
  app = await startTestPulse({
    logger,
    // The demo agents run the setup chain that registering starts.
    agents: [...fastDemoAgents(), agent.definition],
    worker: { concurrency: 2 },
    attempts: 1,
    externalAgentRoles: [EXTERNAL_ROLE],
  });
});
afterAll(async () => {
  agent.finish();
  await app?.close();
});

/** A tRPC call over HTTP with chosen headers, answering with the response's Set-Cookie too. */
async function callWithCookies(path: string, input: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${app.baseUrl}${TRPC_PATH}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(input),
  });
  return { status: res.status, json: (await res.json()) as any, cookie: res.headers.get("set-cookie") };
}

describe("logs", () => {
  it("never contain a password, session or socket token, cookie, or run token, and tie connection and run lines to their ids", async () => {
    const password = `pw-${randomUUID()}`;
    const email = `log-${randomUUID().slice(0, 6)}@example.test`;
    const registered = await callWithCookies("auth.register", { email, password, tenantName: "Logged" });
    expect(registered.status, JSON.stringify(registered.json)).toBe(200);
    const tenantId: string = registered.json.result.data.user.tenantId;

    // A wrong password first, then the right one.
    expect((await callWithCookies("auth.login", { email, password: `${password}-wrong` })).status).toBe(401);
    const login = await callWithCookies("auth.login", { email, password });
    expect(login.status).toBe(200);
    const sessionToken: string = login.json.result.data.token;
    const cookie = login.cookie!.split(";")[0]!;
    const cookieValue = cookie.slice(cookie.indexOf("=") + 1);
    expect(cookieValue.length).toBeGreaterThan(20);

    // The browser's way: the cookie buys a short-lived socket token for connectionParams.
    const socket = await fetch(`${app.baseUrl}${TRPC_PATH}/auth.socketToken`, { headers: { cookie } });
    expect(socket.status).toBe(200);
    const socketToken: string = ((await socket.json()) as any).result.data.token;

    const c = connectClient(app, sessionToken, { socketToken: async () => socketToken });
    const feed = collect((h) => c.trpc.agent.onStatus.subscribe({}, h));
    await eventually(
      () => feed.items.length,
      (n) => n >= 1,
      "the snapshot",
    );

    // An in-process agent run, and an external agent reporting with its run token.
    const http = createTRPCClient<AppRouter>({
      links: [httpLink({ url: `${app.baseUrl}${TRPC_PATH}`, headers: { authorization: `Bearer ${sessionToken}` } })],
    });
    const run = await http.agent.run.mutate({ agentRole: agent.role });
    agent.tick(2);
    agent.finish();
    const external = await http.agent.run.mutate({ agentRole: EXTERNAL_ROLE });
    const reportToken = external.reportToken!;
    expect((await postRunEvent(app, external.runId, reportToken, { type: "agent:active" })).status).toBe(202);
    expect((await postRunEvent(app, external.runId, `${reportToken}x`, { type: "agent:completed" })).status).toBe(401);
    expect((await postRunEvent(app, external.runId, reportToken, { type: "agent:completed" })).status).toBe(202);
    const ended = (runId: string) =>
      feed.events().some((i) => i.data.type === "agent:completed" && i.data.runId === runId);
    await eventually(() => ended(run.runId) && ended(external.runId), Boolean, "both runs completed on the dashboard");

    // The redaction itself, for an object that should never have been logged.
    logger.info(
      {
        headers: { authorization: `Bearer ${sessionToken}`, cookie },
        info: { connectionParams: { token: socketToken } },
        reportToken,
        password,
      },
      "a careless log line",
    );

    feed.unsubscribe();
    await c.close();
    await eventually(
      () => captured.lines.some((l) => l.msg === "websocket closed"),
      Boolean,
      "the connection's close logged",
    );

    const text = captured.text;
    expect(text.length).toBeGreaterThan(0);
    const secrets = {
      password,
      sessionToken,
      cookieValue,
      socketToken,
      reportToken,
      authSecret: new TextDecoder().decode(TEST_SECRET),
    };
    for (const [name, secret] of Object.entries(secrets)) {
      expect(text.includes(secret), `${name} appears in the logs`).toBe(false);
      // Nor a JWT's signature on its own.
      const signature = secret.split(".")[2];
      if (signature) expect(text.includes(signature), `${name}'s signature appears in the logs`).toBe(false);
    }
    const careless = captured.lines.find((l) => l.msg === "a careless log line")!;
    expect(careless.headers).toEqual({ authorization: "[redacted]", cookie: "[redacted]" });
    expect(careless.info.connectionParams).toBe("[redacted]");

    // Every request was logged at trace, without its query string.
    const lines = captured.lines;
    const requests = lines.filter((l) => l.msg === "http request").map((l) => `${l.status} ${l.path}`);
    expect(requests).toEqual(
      expect.arrayContaining([
        "401 /api/trpc/auth.login",
        "200 /api/trpc/auth.login",
        "200 /api/trpc/auth.socketToken",
        `202 /api/runs/${external.runId}/events`,
        `401 /api/runs/${external.runId}/events`,
      ]),
    );

    // Connection lines carry the connection's id, and its tenant once it authenticated.
    const authenticated = lines.find((l) => l.msg === "websocket authenticated" && l.tenantId === tenantId);
    expect(authenticated?.connectionId).toMatch(/^[0-9a-f]{8}$/);
    const connectionId: string = authenticated!.connectionId;
    const ofConnection = lines.filter((l) => l.connectionId === connectionId).map((l) => l.msg);
    expect(ofConnection).toEqual(
      expect.arrayContaining([
        "websocket opened",
        "websocket authenticated",
        "subscription started",
        "websocket closed",
      ]),
    );
    const subscription = lines.find((l) => l.msg === "subscription started" && l.connectionId === connectionId);
    expect(subscription?.tenantId).toBe(tenantId);

    // Agent worker lines carry the tenant, run, job and attempt.
    const started = lines.find((l) => l.msg === "agent run started" && l.runId === run.runId);
    expect(started).toMatchObject({ tenantId, runId: run.runId, jobId: run.runId, attempt: 1, agentRole: agent.role });
    expect(lines.find((l) => l.msg === "agent run completed" && l.runId === run.runId)).toMatchObject({
      tenantId,
      attempt: 1,
    });
  });
});
