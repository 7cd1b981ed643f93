import { createTRPCClient, httpBatchLink, TRPCClientError, wsLink } from "@trpc/client";
import { TRPCError } from "@trpc/server";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import type { Session } from "../auth/auth-service";
import { TRPC_PATH } from "../http-server";
import { createCaller, type AppRouter } from "./root";
import { INTERNAL_ERROR_MESSAGE, type Context } from "./trpc";
import {
  AgentRemote,
  connectClient,
  createQuietTenant,
  eventually,
  fastDemoAgents,
  startTestPulse,
  TEST_SECRET,
  type TestPulse,
} from "../../test/harness";

/**
 * Every procedure through `createCaller`, with a context built the way the HTTP adapter
 * builds it: domain errors arrive as the tRPC code they name, input errors as BAD_REQUEST
 * pointing at the field, and a missing session as UNAUTHORIZED.
 */

/** Concurrency 1, so a second tenant's run of this role waits in the queue. */
const ticker = new AgentRemote("ticker", { concurrency: 1 });
const PASSWORD = "correct horse battery";

let app: TestPulse;
beforeAll(async () => {
  app = await startTestPulse({ agents: [...fastDemoAgents(), ticker.definition] });
});
afterEach(async () => {
  ticker.finish();
  await new Promise((r) => setTimeout(r, 100));
  ticker.reset();
});
afterAll(async () => {
  await app?.close();
});

interface CookieWrite {
  token: string | null;
  maxAge: number | undefined;
}

/** A caller with the same context shape `createPulseServer` builds per request. */
function callerFor(session: Session | null, options: { signal?: AbortSignal } = {}) {
  const cookies: CookieWrite[] = [];
  const ctx: Context = {
    services: app.pulse.services,
    session,
    setSessionCookie: (token, maxAge) => cookies.push({ token, maxAge }),
  };
  return { caller: createCaller(ctx, options), cookies };
}

async function sessionOf(token: string): Promise<Session> {
  const session = await app.pulse.services.auth.verify(token);
  if (!session) throw new Error("token did not verify");
  return session;
}

/** The TRPCError a call failed with; fails the test when the call succeeded. */
async function rejection(call: Promise<unknown> | (() => Promise<unknown>)): Promise<TRPCError> {
  try {
    await (typeof call === "function" ? call() : call);
  } catch (error) {
    expect(error).toBeInstanceOf(TRPCError);
    return error as TRPCError;
  }
  throw new Error("expected the call to fail");
}

/** The paths of the zod issues behind a BAD_REQUEST. */
function issuePaths(error: TRPCError): string[] {
  expect(error.code).toBe("BAD_REQUEST");
  expect(error.cause).toBeInstanceOf(z.ZodError);
  return (error.cause as z.ZodError).issues.map((i) => i.path.join("."));
}

/**
 * What a subscription yields to an in-process caller. The type says `{ id, data }` (what
 * clients receive); the value is the `tracked()` envelope the adapters unwrap: [id, data].
 */
function untrack<T>(value: { id: string; data: T }): { id: string; data: T } {
  if (Array.isArray(value)) return { id: value[0] as string, data: value[1] as T };
  return value;
}

describe("auth procedures through the server-side caller", () => {
  it("register, me, socketToken, login and logout set and clear the session the way the HTTP handler would", async () => {
    const anonymous = callerFor(null);
    const email = `caller-${Date.now()}@example.test`;
    const registered = await anonymous.caller.auth.register({
      email: email.toUpperCase(),
      password: PASSWORD,
      tenantName: " Caller Co ",
    });
    expect(registered.user.email).toBe(email);
    expect(anonymous.cookies).toEqual([{ token: registered.token, maxAge: app.pulse.services.sessionTtlSeconds }]);
    const session = await sessionOf(registered.token);
    expect(session).toEqual({
      userId: registered.user.id,
      tenantId: registered.user.tenantId,
      email,
      sessionId: expect.any(String),
      access: "write",
    });

    const signedIn = callerFor(session);
    expect(await signedIn.caller.auth.me()).toEqual({ id: session.userId, email, tenantId: session.tenantId });
    expect(await anonymous.caller.auth.me()).toBeNull();

    // Registration started the setup chain for the new tenant.
    const { runs } = await signedIn.caller.agent.list({ agentRole: "client-researcher" });
    expect(runs).toHaveLength(1);
    expect(runs[0]!.chainId).not.toBeNull();

    // The socket token opens a WebSocket, but is no session cookie.
    const { token: socketToken } = await signedIn.caller.auth.socketToken();
    expect(await app.pulse.services.auth.verify(socketToken, "socket-or-session")).toEqual(session);
    expect(await app.pulse.services.auth.verify(socketToken)).toBeNull();

    const login = callerFor(null);
    const loggedIn = await login.caller.auth.login({ email, password: PASSWORD });
    expect(loggedIn.user).toEqual(registered.user);
    // Each sign-in is a session of its own, so logging one out leaves the others.
    const loggedInSession = await sessionOf(loggedIn.token);
    expect(loggedInSession).toEqual({ ...session, sessionId: expect.any(String) });
    expect(loggedInSession.sessionId).not.toBe(session.sessionId);
    expect(login.cookies).toEqual([{ token: loggedIn.token, maxAge: app.pulse.services.sessionTtlSeconds }]);

    const wrongPassword = await rejection(callerFor(null).caller.auth.login({ email, password: "not the password" }));
    const unknownEmail = await rejection(
      callerFor(null).caller.auth.login({ email: `nobody-${email}`, password: PASSWORD }),
    );
    expect(wrongPassword.code).toBe("UNAUTHORIZED");
    expect(unknownEmail.code).toBe("UNAUTHORIZED");
    expect(unknownEmail.message).toBe(wrongPassword.message);

    const again = await rejection(
      callerFor(null).caller.auth.register({ email, password: PASSWORD, tenantName: "Again" }),
    );
    expect(again.code).toBe("CONFLICT");
    expect(again.message).toMatch(/^email:/);

    const logout = callerFor(session);
    expect(await logout.caller.auth.logout()).toEqual({ ok: true });
    expect(logout.cookies).toEqual([{ token: null, maxAge: undefined }]);
    // Logging out revokes the session: its tokens no longer verify; the other sign-in's still do.
    expect(await app.pulse.services.auth.verify(registered.token)).toBeNull();
    expect(await app.pulse.services.auth.verify(socketToken, "socket-or-session")).toBeNull();
    expect(await sessionOf(loggedIn.token)).toEqual(loggedInSession);

    // Let the setup chain end before the next test shares the workers: the writer completes
    // the context file a moment before its own run completes.
    await eventually(
      () => signedIn.caller.context.get(),
      (c) => c?.status === "completed",
      "the setup chain",
    );
    await eventually(
      async () => (await signedIn.caller.agent.list()).runs,
      (runs) => runs.every((r) => r.status !== "queued" && r.status !== "active"),
      "the setup chain's runs to end",
    );
  });
});

describe("agent procedures through the server-side caller", () => {
  it("run, roles, list, get, logs, events, cancel and retry, with CONFLICT for a role already running", async () => {
    const tenant = await createQuietTenant(app);
    const { caller } = callerFor(tenant.session);

    const roles = await caller.agent.roles();
    expect(roles.map((r) => r.role)).toEqual([
      "client-researcher",
      "competitor-researcher",
      "context-file-writer",
      "ticker",
    ]);
    // With the fields of its input, which the dashboard's form asks for.
    expect(roles[0]).toEqual({
      role: "client-researcher",
      title: "Client researcher",
      inChain: true,
      input: [{ kind: "text", name: "company", label: "Company", required: false, maxLength: 200 }],
    });

    const started = await caller.agent.run({ agentRole: ticker.role, input: { topic: "pricing", depth: 2 } });
    expect(started.status).toBe("queued");
    expect(started.run).toMatchObject({
      id: started.runId,
      agentRole: ticker.role,
      tenantId: tenant.tenantId,
      attempt: 1,
    });
    await eventually(
      () => caller.agent.get({ runId: started.runId }),
      (r) => r.status === "active",
      "the run to be active",
    );

    const busy = await rejection(caller.agent.run({ agentRole: ticker.role }));
    expect(busy.code).toBe("CONFLICT");
    expect(busy.message).toBe(`ticker is already running (run ${started.runId})`);

    ticker.tick(3);
    await eventually(
      () => caller.agent.get({ runId: started.runId }),
      (r) => r.progress === 3,
      "tick 3",
    );
    const active = await caller.agent.list({ status: ["active"] });
    expect(active.runs.map((r) => r.id)).toEqual([started.runId]);
    expect((await caller.agent.list({ status: ["completed"] })).runs).toEqual([]);

    const { items, cursor } = await caller.agent.events({ runId: started.runId, cursor: "0-0" });
    expect(items.map((i) => (i.item.type === "agent:progress" ? i.item.message : i.item.type))).toEqual([
      "agent:queued",
      "agent:active",
      "tick 1",
      "tick 2",
      "tick 3",
    ]);
    expect(cursor).toBe(items.at(-1)!.id);

    const cancelled = await caller.agent.cancel({ runId: started.runId });
    expect(cancelled).toMatchObject({ id: started.runId, status: "cancelled", progress: 3 });
    const twice = await rejection(caller.agent.cancel({ runId: started.runId }));
    expect(twice.code).toBe("CONFLICT");
    // The worker saw the cancellation and reported nothing after it.
    ticker.tick(1);
    await new Promise((r) => setTimeout(r, 200));
    const afterCancel = await caller.agent.events({ runId: started.runId, cursor });
    expect(afterCancel.items.map((i) => i.item.type)).toEqual(["agent:cancelled"]);
    expect((await caller.agent.get({ runId: started.runId })).status).toBe("cancelled");

    ticker.reset();
    const retried = await caller.agent.retry({ runId: started.runId });
    expect(retried.runId).not.toBe(started.runId);
    expect(retried.status).toBe("queued");
    await eventually(
      () => caller.agent.get({ runId: retried.runId }),
      (r) => r.status === "active",
      "the retry to be active",
    );
    ticker.finish();
    const done = await eventually(
      () => caller.agent.get({ runId: retried.runId }),
      (r) => r.status === "completed",
      "the retry to complete",
    );
    expect(done).toMatchObject({ progress: 100, attempt: 1, error: null });

    const logs = await caller.agent.logs({ runId: retried.runId });
    expect(logs.logs.map((l) => [l.level, l.message])).toEqual([["info", "finished"]]);
    expect(logs.nextCursor).toBeNull();
    const notRetryable = await rejection(caller.agent.retry({ runId: retried.runId }));
    expect(notRetryable.code).toBe("CONFLICT");

    const all = await caller.agent.list({ agentRole: ticker.role, limit: 1 });
    expect(all.runs.map((r) => r.id)).toEqual([retried.runId]);
    expect(all.nextCursor).not.toBeNull();
    const older = await caller.agent.list({ agentRole: ticker.role, limit: 1, cursor: all.nextCursor! });
    expect(older.runs.map((r) => r.id)).toEqual([started.runId]);
  });

  it("agent.run for a role still queued behind another tenant's run is CONFLICT", async () => {
    const holder = callerFor((await createQuietTenant(app)).session).caller;
    const waiter = callerFor((await createQuietTenant(app)).session).caller;
    const held = await holder.agent.run({ agentRole: ticker.role });
    await eventually(
      () => holder.agent.get({ runId: held.runId }),
      (r) => r.status === "active",
      "the holder's run to be active",
    );

    // The worker runs one ticker at a time, so this run waits in the queue.
    const queued = await waiter.agent.run({ agentRole: ticker.role });
    await new Promise((r) => setTimeout(r, 300));
    expect((await waiter.agent.get({ runId: queued.runId })).status).toBe("queued");
    const conflict = await rejection(waiter.agent.run({ agentRole: ticker.role }));
    expect(conflict.code).toBe("CONFLICT");
    expect(conflict.message).toBe(`ticker is already queued (run ${queued.runId})`);

    ticker.finish();
    await eventually(
      () => waiter.agent.get({ runId: queued.runId }),
      (r) => r.status === "completed",
      "the queued run to run once the slot frees",
    );
    expect((await waiter.agent.list({ agentRole: ticker.role })).runs).toHaveLength(1);
  });
});

describe("context procedures through the server-side caller", () => {
  it("get, events and approve: a stale version is CONFLICT, one the file never had NOT_FOUND, the current one is approved by the caller", async () => {
    const registered = await callerFor(null).caller.auth.register({
      email: `context-${Date.now()}@example.test`,
      password: PASSWORD,
      tenantName: "Context Co",
    });
    const session = await sessionOf(registered.token);
    const { caller } = callerFor(session);
    const start = await caller.context.events();
    expect(start.items).toHaveLength(1);
    expect(start.items[0]!.item.type).toBe("snapshot");

    const file = await eventually(
      () => caller.context.get(),
      (c) => c?.status === "completed",
      "the context file",
    );
    expect(file).toMatchObject({ version: 1, approvedBy: null, approvedAt: null });
    expect(file!.content).toContain("# Context file");

    // A version the file never had (another tenant's, or made up) is NOT_FOUND, like any id that does not exist.
    const unknown = await rejection(caller.context.approve({ version: 2 }));
    expect(unknown.code).toBe("NOT_FOUND");
    expect(unknown.message).toBe("version: the context file has no version 2");

    const approved = await caller.context.approve({ version: 1 });
    expect(approved).toMatchObject({ status: "approved", version: 1, approvedBy: session.email });
    expect(approved.approvedAt).not.toBeNull();
    const twice = await rejection(caller.context.approve({ version: 1 }));
    expect(twice.code).toBe("CONFLICT");

    const events = await caller.context.events({ cursor: "0-0" });
    expect(events.items.map((i) => (i.item.type === "context:status_changed" ? i.item.status : i.item.type))).toEqual([
      "pending",
      "generating",
      "completed",
      "approved",
    ]);
    expect((await caller.context.events({ cursor: events.cursor })).items).toEqual([]);

    const other = callerFor((await createQuietTenant(app)).session).caller;
    expect(await other.context.get()).toBeNull();
    const none = await rejection(other.context.approve({ version: 1 }));
    expect(none.code).toBe("NOT_FOUND");
  });

  it("a context file written with a U+0000 in it is stored and shown with U+FFFD, as every agent text", async () => {
    const tenant = await createQuietTenant(app);
    const { context } = app.pulse.services;
    expect(await context.complete(tenant.tenantId, "# Context file\n\u0000 from the model\n")).toBe(1);
    expect(await callerFor(tenant.session).caller.context.get()).toMatchObject({
      status: "completed",
      version: 1,
      content: "# Context file\n\uFFFD from the model\n",
    });
  });
});

describe("input and authentication errors", () => {
  it("invalid input is BAD_REQUEST naming the field, before any service runs", async () => {
    const tenant = await createQuietTenant(app);
    const { caller } = callerFor(tenant.session);
    expect(issuePaths(await rejection(caller.agent.run({ agentRole: "Not A Role" })))).toEqual(["agentRole"]);
    expect(issuePaths(await rejection(caller.agent.events({ cursor: "yesterday" })))).toEqual(["cursor"]);
    expect(issuePaths(await rejection(caller.agent.list({ limit: 0 })))).toEqual(["limit"]);
    expect(issuePaths(await rejection(caller.agent.get({ runId: "" })))).toEqual(["runId"]);
    expect(issuePaths(await rejection(caller.context.approve({ version: 0 })))).toEqual(["version"]);
    expect(issuePaths(await rejection(caller.agent.onStatus({ lastEventId: "not-an-id" })))).toEqual(["lastEventId"]);
    const register = await rejection(
      callerFor(null).caller.auth.register({ email: "nope", password: "short", tenantName: "x" }),
    );
    expect(issuePaths(register).sort()).toEqual(["email", "password"]);

    // A role that passes the pattern but has no agent is the service's BAD_REQUEST, naming the field too.
    const unknown = await rejection(caller.agent.run({ agentRole: "no-such-agent" }));
    expect(unknown.code).toBe("BAD_REQUEST");
    expect(unknown.message).toBe('agentRole: no agent named "no-such-agent"');
    expect((await caller.agent.list()).runs).toEqual([]);

    // Over HTTP the same error carries zod's field errors for the form.
    const http = createTRPCClient<AppRouter>({
      links: [
        httpBatchLink({ url: `${app.baseUrl}${TRPC_PATH}`, headers: { authorization: `Bearer ${tenant.token}` } }),
      ],
    });
    const overHttp = await http.agent.run.mutate({ agentRole: "Not A Role" }).catch((e: unknown) => e);
    expect(overHttp).toBeInstanceOf(TRPCClientError);
    const data = (overHttp as TRPCClientError<AppRouter>).data;
    expect(data?.code).toBe("BAD_REQUEST");
    expect(data?.httpStatus).toBe(400);
    expect(Object.keys(data?.zodError?.fieldErrors ?? {})).toEqual(["agentRole"]);
  });

  it("an unexpected failure is INTERNAL_SERVER_ERROR saying only that, over HTTP and WebSocket: its details stay in the log", async () => {
    const tenant = await createQuietTenant(app);
    const secret = "connect ECONNREFUSED /srv/pulse/secret-path.sock";
    const list = vi.spyOn(app.pulse.services.runs, "list").mockRejectedValue(new Error(secret));
    const socket = connectClient(app, tenant.token);
    try {
      const http = createTRPCClient<AppRouter>({
        links: [
          httpBatchLink({ url: `${app.baseUrl}${TRPC_PATH}`, headers: { authorization: `Bearer ${tenant.token}` } }),
        ],
      });
      const ws = createTRPCClient<AppRouter>({ links: [wsLink({ client: socket.ws })] });
      for (const client of [http, ws]) {
        const failed = await client.agent.list.query().catch((e: unknown) => e);
        expect(failed).toBeInstanceOf(TRPCClientError);
        const error = failed as TRPCClientError<AppRouter>;
        expect(error.data?.code).toBe("INTERNAL_SERVER_ERROR");
        expect(error.message).toBe(INTERNAL_ERROR_MESSAGE);
        expect(JSON.stringify(error.shape)).not.toContain("secret-path");
      }
      expect(list).toHaveBeenCalledTimes(2);
    } finally {
      list.mockRestore();
      await socket.close();
    }
  });

  it("every authed procedure is UNAUTHORIZED without a verified session", async () => {
    const { caller } = callerFor(null);
    const runId = "00000000-0000-0000-0000-000000000000";
    const calls: Record<string, () => Promise<unknown>> = {
      "agent.list": () => caller.agent.list(),
      "agent.get": () => caller.agent.get({ runId }),
      "agent.logs": () => caller.agent.logs({ runId }),
      "agent.events": () => caller.agent.events({}),
      "agent.roles": () => caller.agent.roles(),
      "agent.run": () => caller.agent.run({ agentRole: ticker.role }),
      "agent.runChain": () => caller.agent.runChain(),
      "agent.cancel": () => caller.agent.cancel({ runId }),
      "agent.retry": () => caller.agent.retry({ runId }),
      "agent.runAgain": () => caller.agent.runAgain({ runId }),
      "agent.onStatus": () => caller.agent.onStatus({}),
      "context.get": () => caller.context.get(),
      "context.events": () => caller.context.events(),
      "context.approve": () => caller.context.approve({ version: 1 }),
      "context.onStatusChanged": async () => {
        // A generator procedure fails on its first step, not on the call.
        const iterable = await caller.context.onStatusChanged();
        for await (const _ of iterable) break;
      },
      "auth.socketToken": () => caller.auth.socketToken(),
    };
    for (const [path, call] of Object.entries(calls)) {
      const error = await rejection(call);
      expect(error.code, path).toBe("UNAUTHORIZED");
    }

    // A token signed with another secret is no session either, over HTTP.
    const { AuthService } = await import("../auth/auth-service");
    const forger = new AuthService(app.pulse.services, {
      secret: new TextEncoder().encode(`x${new TextDecoder().decode(TEST_SECRET)}`),
      sessionTtlSeconds: 60,
    });
    const tenant = await createQuietTenant(app);
    const forged = await forger.issueSessionToken(tenant.session);
    const http = createTRPCClient<AppRouter>({
      links: [httpBatchLink({ url: `${app.baseUrl}${TRPC_PATH}`, headers: { authorization: `Bearer ${forged}` } })],
    });
    const rejected = await http.agent.list.query().catch((e: unknown) => e);
    expect((rejected as TRPCClientError<AppRouter>).data?.code).toBe("UNAUTHORIZED");
    expect((rejected as TRPCClientError<AppRouter>).data?.httpStatus).toBe(401);
  });
});

describe("subscriptions through the server-side caller", () => {
  it("agent.onStatus is an async iterable of tracked items that ends when its signal aborts", async () => {
    const tenant = await createQuietTenant(app);
    const controller = new AbortController();
    const { caller } = callerFor(tenant.session, { signal: controller.signal });
    const readersBefore = app.pulse.services.reader.tenantCount;

    const iterable = await caller.agent.onStatus({});
    const received: { id: string; type: string; message?: string }[] = [];
    const consumed = (async () => {
      for await (const value of iterable) {
        const { id, data: item } = untrack(value);
        received.push({ id, type: item.type, ...(item.type === "agent:progress" ? { message: item.message } : {}) });
        if (item.type === "agent:progress" && item.message === "tick 2") controller.abort();
      }
    })();
    await eventually(
      () => received.length,
      (n) => n === 1,
      "the snapshot",
    );
    expect(received[0]!.type).toBe("snapshot");
    expect(app.pulse.services.reader.tenantCount).toBe(readersBefore + 1);

    const { caller: plain } = callerFor(tenant.session);
    const { runId } = await plain.agent.run({ agentRole: ticker.role });
    ticker.tick(2);
    // The loop ends by itself once the signal aborts: no break, no return() from the test.
    await consumed;
    expect(received.map((r) => r.message ?? r.type)).toEqual([
      "snapshot",
      "agent:queued",
      "agent:active",
      "tick 1",
      "tick 2",
    ]);
    expect(app.pulse.services.reader.tenantCount).toBe(readersBefore);
    const polled = await plain.agent.events({ cursor: received[0]!.id });
    expect(polled.items.map((i) => i.id)).toEqual(received.slice(1).map((r) => r.id));

    ticker.finish();
    await eventually(
      () => plain.agent.get({ runId }),
      (r) => r.status === "completed",
      "the run to complete",
    );
  });

  it("context.onStatusChanged through the caller resumes after lastEventId and stops on abort", async () => {
    const tenant = await createQuietTenant(app);
    const { context } = app.pulse.services;
    await context.reset(tenant.tenantId);
    await context.markGenerating(tenant.tenantId);
    const { caller: plain } = callerFor(tenant.session);
    const history = await plain.context.events({ cursor: "0-0" });
    expect(history.items).toHaveLength(2);

    const controller = new AbortController();
    const { caller } = callerFor(tenant.session, { signal: controller.signal });
    const iterable = await caller.context.onStatusChanged({ lastEventId: history.items[0]!.id });
    const statuses: string[] = [];
    const consumed = (async () => {
      for await (const value of iterable) {
        const { data: item } = untrack(value);
        statuses.push(item.type === "context:status_changed" ? item.status : item.type);
        if (statuses.length === 2) controller.abort();
      }
    })();
    await eventually(
      () => statuses.length,
      (n) => n === 1,
      "the replayed event",
    );
    await context.complete(tenant.tenantId, "# Context file\n");
    await consumed;
    expect(statuses).toEqual(["generating", "completed"]);
  });
});
