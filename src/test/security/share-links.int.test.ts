import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  collect,
  connectClient,
  createQuietTenant,
  eventually,
  OpenConnections,
  startTestPulse,
  type TestClient,
  type TestPulse,
} from "../harness";
import { TRPC_PATH } from "../../server/http-server";
import { AttackLog, errorCode, failureOf, httpClient, postRunEvent } from "./security-kit";

/**
 * Read-only share links: a run-scoped, expiring, revocable token that lets someone outside
 * the tenant watch one run live (socket and polling), and nothing else.
 */

const LONG = process.env.PULSE_LONG === "1";
// The long run (`npm run test:security`) scales every count up; its tests get time to match.
if (LONG) vi.setConfig({ testTimeout: 900_000 });
const log = new AttackLog("share-links", LONG);
const SHARED = "watched-agent";
/** Views of its run a link's viewers share per second here (bursts twice this): low, so a short loop spends them. */
const VIEWS_PER_SECOND = 5;
const UNSHARED = "private-agent";

let app: TestPulse;
/** Clients and subscriptions a test opens, closed after it. */
const open = new OpenConnections();
const { clients, collectors } = open;

beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    externalAgentRoles: [SHARED, UNSHARED],
    auth: { shareLinkMaxTtlSeconds: 3600, shareViewsPerSecond: VIEWS_PER_SECOND },
    security: { ws: { tokenGraceMs: 500 } },
  });
});
afterEach(async () => {
  await open.closeAll();
});
afterAll(async () => {
  await log.save();
  await app?.close();
});

async function report(runId: string, token: string | null, body: unknown): Promise<string> {
  const res = await postRunEvent(app, runId, token, body);
  expect(res.status).toBe(202);
  return (res.json as { id: string }).id;
}

/** A tenant with a shared and an unshared external run, both active. */
async function tenantWithRuns() {
  const tenant = await createQuietTenant(app);
  const owner = httpClient(app, tenant.token);
  const shared = await owner.agent.run.mutate({ agentRole: SHARED });
  const unshared = await owner.agent.run.mutate({ agentRole: UNSHARED });
  await report(shared.runId, shared.reportToken, { type: "agent:active" });
  await report(unshared.runId, unshared.reportToken, { type: "agent:active" });
  return { tenant, owner, shared, unshared };
}

function viewer(token: string): TestClient {
  const c = connectClient(app, token);
  clients.push(c);
  return c;
}

describe("a share link", () => {
  it("lets someone outside the tenant watch one run live, over the socket and by polling, and nothing else", async () => {
    const { tenant, owner, shared, unshared } = await tenantWithRuns();
    const link = await owner.share.create.mutate({ runId: shared.runId, expiresInMinutes: 30 });
    expect(link).toEqual({
      shareId: expect.any(String),
      token: expect.any(String),
      path: expect.any(String),
      expiresAt: expect.any(String),
    });
    // The token travels in the fragment, which browsers never send to the server.
    expect(link.path).toBe(`/share#${link.token}`);

    const outsider = viewer(link.token);
    const live = collect((h) => outsider.trpc.share.onRun.subscribe({}, h));
    collectors.push(live);
    await eventually(
      () => live.items.length,
      (n) => n === 1,
      "the shared run's snapshot",
    );
    expect(live.items[0]!.data).toMatchObject({
      type: "snapshot",
      snapshot: { runs: [expect.objectContaining({ id: shared.runId, status: "active" })] },
    });
    expect(live.items[0]!.data.snapshot.runs).toHaveLength(1);

    const sharedIds: string[] = [];
    for (let i = 1; i <= 3; i++) {
      sharedIds.push(
        await report(shared.runId, shared.reportToken, {
          type: "agent:progress",
          progress: i * 10,
          message: `shared ${i}`,
        }),
      );
      await report(unshared.runId, unshared.reportToken, {
        type: "agent:progress",
        progress: i * 10,
        message: `PRIVATE ${i}`,
      });
    }
    await eventually(
      () => live.events().length,
      (n) => n === 3,
      "the shared run's events",
    );
    expect(live.events().map((i) => i.id)).toEqual(sharedIds);
    expect(JSON.stringify(live.items)).not.toContain("PRIVATE");

    // Polling gives the same items with the same ids.
    const polling = httpClient(app, link.token);
    const page = await polling.share.events.query({ cursor: live.items[0]!.id });
    expect(page.items.map((i) => i.id)).toEqual(sharedIds);
    // With what dashboards call its agent, since the page can no longer read it on the server.
    expect(await polling.share.run.query()).toMatchObject({
      id: shared.runId,
      progress: 30,
      message: "shared 3",
      title: expect.any(String),
    });
    // Its logs, and only its logs.
    await report(shared.runId, shared.reportToken, { type: "agent:log", level: "info", message: "shared line" });
    await report(unshared.runId, unshared.reportToken, { type: "agent:log", level: "info", message: "PRIVATE line" });
    expect((await polling.share.logs.query()).logs.map((l) => l.message)).toEqual(["shared line"]);

    // Everything else is closed to the link, on both paths.
    const closed: Record<string, () => Promise<unknown>> = {
      "agent.list": () => polling.agent.list.query(),
      "agent.get (the shared run)": () => polling.agent.get.query({ runId: shared.runId }),
      "agent.get (another run)": () => polling.agent.get.query({ runId: unshared.runId }),
      "agent.logs": () => polling.agent.logs.query({ runId: shared.runId }),
      "agent.events": () => polling.agent.events.query({ runId: shared.runId, cursor: "0-0" }),
      "agent.roles": () => polling.agent.roles.query(),
      "agent.run": () => polling.agent.run.mutate({ agentRole: SHARED }),
      "agent.cancel": () => polling.agent.cancel.mutate({ runId: shared.runId }),
      "agent.retry": () => polling.agent.retry.mutate({ runId: shared.runId }),
      "agent.runAgain": () => polling.agent.runAgain.mutate({ runId: shared.runId }),
      "agent.runChain": () => polling.agent.runChain.mutate(),
      "context.get": () => polling.context.get.query(),
      "context.events": () => polling.context.events.query({ cursor: "0-0" }),
      "context.approve": () => polling.context.approve.mutate({ version: 1 }),
      "auth.socketToken": () => polling.auth.socketToken.query(),
      "share.create": () => polling.share.create.mutate({ runId: shared.runId }),
      "share.revoke": () => polling.share.revoke.mutate({ shareId: link.shareId }),
    };
    for (let round = 0; round < (LONG ? 100 : 1); round++) {
      for (const [name, call] of Object.entries(closed)) {
        const error = await failureOf(call());
        log.attempt(
          "Share token used beyond its run",
          "UNAUTHORIZED",
          error?.data?.code === "UNAUTHORIZED",
          () => `${name}: ${error?.message ?? "served"}`,
        );
      }
      for (const path of ["agent.onStatus", "context.onStatusChanged"] as const) {
        const sub = collect((h) =>
          path === "agent.onStatus"
            ? outsider.trpc.agent.onStatus.subscribe({}, h)
            : outsider.trpc.context.onStatusChanged.subscribe({}, h),
        );
        collectors.push(sub);
        await eventually(
          () => sub.errors.length + sub.items.length,
          (n) => n >= 1,
          `${path} with a share token`,
        );
        log.attempt(
          "Share token used beyond its run",
          "UNAUTHORIZED",
          sub.items.length === 0 && errorCode(sub.errors[0]) === "UNAUTHORIZED",
          () => path,
        );
      }
    }
    expect(await polling.auth.me.query()).toBeNull();
    expect(log.failures()).toEqual([]);
    // The run is untouched and the link still works.
    expect(await owner.agent.get.query({ runId: shared.runId })).toMatchObject({ status: "active", progress: 30 });
    expect(live.errors).toEqual([]);
    expect(tenant.tenantId).toBe(live.events()[0]!.data.tenantId);
  });

  it("expires: its viewers' subscriptions end with UNAUTHORIZED, and it opens nothing afterwards", async () => {
    const { tenant, shared } = await tenantWithRuns();
    const link = await app.pulse.services.shares.create(tenant.session, shared.runId, 2);
    const live = collect((h) => viewer(link.token).trpc.share.onRun.subscribe({}, h));
    collectors.push(live);
    await eventually(
      () => live.items.length,
      (n) => n === 1,
      "the snapshot",
    );
    await eventually(
      () => live.errors.length,
      (n) => n === 1,
      "the expiry",
      10_000,
    );
    expect(errorCode(live.errors[0])).toBe("UNAUTHORIZED");
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(link.expiresAt));
    const after = await failureOf(httpClient(app, link.token).share.run.query());
    log.attempt(
      "Expired share link",
      "UNAUTHORIZED on every path",
      after?.data?.code === "UNAUTHORIZED" && errorCode(live.errors[0]) === "UNAUTHORIZED",
    );
    expect(after?.data?.code).toBe("UNAUTHORIZED");
  });

  it("revoked by the tenant ends its viewers' subscriptions within seconds, and its requests at once", async () => {
    const { owner, shared } = await tenantWithRuns();
    const link = await owner.share.create.mutate({ runId: shared.runId });
    const live = collect((h) => viewer(link.token).trpc.share.onRun.subscribe({}, h));
    collectors.push(live);
    await eventually(
      () => live.items.length,
      (n) => n === 1,
      "the snapshot",
    );
    const revokedAt = Date.now();
    expect(await owner.share.revoke.mutate({ shareId: link.shareId })).toEqual({ ok: true });
    expect((await failureOf(httpClient(app, link.token).share.run.query()))?.data?.code).toBe("UNAUTHORIZED");
    await eventually(
      () => live.errors.length,
      (n) => n === 1,
      "the revocation to reach the viewer",
    );
    const took = Date.now() - revokedAt;
    log.attempt(
      "Revoked share link",
      "viewers end within seconds",
      errorCode(live.errors[0]) === "UNAUTHORIZED" && took < 3_000,
      () => `${took} ms`,
    );
    expect((live.errors[0] as Error).message).toBe("this share link was revoked or has expired");
  });

  it("shares one budget of views among all of a link's viewers: past it, 429 with Retry-After and TOO_MANY_REQUESTS on the socket, other links served", async () => {
    const { owner, shared } = await tenantWithRuns();
    const link = await owner.share.create.mutate({ runId: shared.runId });
    const other = await owner.share.create.mutate({ runId: shared.runId });
    const view = async (token: string) => {
      const res = await fetch(`${app.baseUrl}${TRPC_PATH}/share.run`, {
        headers: { authorization: `Bearer ${token}` },
      });
      return {
        status: res.status,
        retryAfter: Number(res.headers.get("retry-after")),
        body: (await res.json()) as { error?: { data?: { code?: string; retryAfterSeconds?: number | null } } },
      };
    };
    // Rounds of views at once, more than the burst, until one is refused.
    let refused: Awaited<ReturnType<typeof view>> | undefined;
    for (let round = 0; round < 20 && !refused; round++) {
      refused = (await Promise.all(Array.from({ length: VIEWS_PER_SECOND * 2 + 2 }, () => view(link.token)))).find(
        (a) => a.status === 429,
      );
    }
    // On the socket, subscriptions one after another until one is refused: the same budget.
    const socket = viewer(link.token);
    let socketRefusal: unknown;
    for (let i = 0; i < 50 && socketRefusal === undefined; i++) {
      const live = collect((h) => socket.trpc.share.onRun.subscribe({}, h));
      collectors.push(live);
      await eventually(
        () => live.errors.length + live.items.length,
        (n) => n > 0,
        "the subscription's answer",
      );
      socketRefusal = live.errors[0];
      live.unsubscribe();
    }
    const served = await view(other.token);
    const socketWait =
      (socketRefusal as { data?: { retryAfterSeconds?: number | null } } | undefined)?.data?.retryAfterSeconds ?? 0;
    log.attempt(
      "One share link's viewers open views in a loop",
      "429 with Retry-After past the link's budget, TOO_MANY_REQUESTS on the socket; other links served",
      refused?.body.error?.data?.code === "TOO_MANY_REQUESTS" &&
        refused.retryAfter >= 1 &&
        refused.body.error.data.retryAfterSeconds === refused.retryAfter &&
        errorCode(socketRefusal) === "TOO_MANY_REQUESTS" &&
        socketWait >= 1 &&
        served.status === 200,
      () =>
        `http ${refused?.status} retry-after ${refused?.retryAfter} (data ${refused?.body.error?.data?.retryAfterSeconds}), socket ${errorCode(socketRefusal)} retry after ${socketWait}, other link ${served.status}`,
    );
    expect(refused?.body.error?.data?.code).toBe("TOO_MANY_REQUESTS");
    expect(refused?.retryAfter).toBeGreaterThanOrEqual(1);
    // The wait as data too, over HTTP and on the socket, where there is no header to carry it.
    expect(refused?.body.error?.data?.retryAfterSeconds).toBe(refused?.retryAfter);
    expect(errorCode(socketRefusal)).toBe("TOO_MANY_REQUESTS");
    expect(socketWait).toBeGreaterThanOrEqual(1);
    expect(served.status).toBe(200);
  });

  it("is only made and revoked by the run's own tenant, within the maximum lifetime", async () => {
    const owner = await tenantWithRuns();
    const intruder = await tenantWithRuns();
    const link = await owner.owner.share.create.mutate({ runId: owner.shared.runId });
    for (let i = 0; i < (LONG ? 200 : 2); i++) {
      const create = await failureOf(intruder.owner.share.create.mutate({ runId: owner.shared.runId }));
      const revoke = await failureOf(intruder.owner.share.revoke.mutate({ shareId: link.shareId }));
      log.attempt(
        "Share link for another tenant's run",
        "NOT_FOUND, like a missing run",
        create?.data?.code === "NOT_FOUND" && create.message === "run not found",
      );
      log.attempt("Revoking another tenant's share link", "NOT_FOUND", revoke?.data?.code === "NOT_FOUND");
    }
    const tooLong = await failureOf(
      owner.owner.share.create.mutate({ runId: owner.shared.runId, expiresInMinutes: 61 }),
    );
    expect(tooLong?.data?.code).toBe("BAD_REQUEST");
    expect(tooLong?.message).toBe("expiresInMinutes: at most 60");
    expect(await httpClient(app, link.token).share.run.query()).toMatchObject({ id: owner.shared.runId });
    expect(log.failures()).toEqual([]);
  });
});
