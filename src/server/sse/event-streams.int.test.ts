import {
  createTRPCClient,
  httpBatchLink,
  httpSubscriptionLink,
  retryLink,
  splitLink,
  type TRPCClient,
} from "@trpc/client";
import { EventSource } from "eventsource";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, createQuietTenant, eventually, startTestPulse, type TestPulse } from "../../test/harness";
import { TRPC_PATH } from "../http-server";
import type { AppRouter } from "../trpc/root";
import { TOKEN_EXPIRED } from "../../shared/session-messages";

/**
 * The server-sent-events tier over real HTTP with tRPC's own `httpSubscriptionLink` (and the
 * `eventsource` package, the WHATWG EventSource for Node): the same items with the same ids
 * as the WebSocket, resume by `lastEventId`, tenant isolation, the token's expiry, revocation
 * and the caps.
 *
 * @see https://trpc.io/docs/client/links/httpSubscriptionLink
 */

let app: TestPulse;
const closers: (() => void)[] = [];

beforeAll(async () => {
  app = await startTestPulse({
    runWorkers: false,
    auth: { socketTokenTtlSeconds: 4 },
    // A socket token lives 4 s; its stream ends 2 s before, so the client subscribes again with a fresh one.
    security: { ws: { tokenRefreshLeadMs: 2_000, tokenGraceMs: 500 }, sse: { perUser: 3 } },
  });
});

afterAll(async () => {
  for (const close of closers) close();
  await app?.close();
});

/** A client whose subscriptions are server-sent events, authenticated by `connectionParams` (a fresh token per subscribe). */
function sseClient(
  token: () => string | Promise<string>,
  options: { retryExpired?: boolean } = {},
): TRPCClient<AppRouter> {
  const subscriptions = httpSubscriptionLink<AppRouter, typeof EventSource>({
    url: `${app.baseUrl}${TRPC_PATH}`,
    EventSource,
    connectionParams: async () => ({ token: await token() }),
  });
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        // As the browser's client does: a stream ended by its token's expiry is subscribed again (by `lastEventId`) with a fresh one.
        true: options.retryExpired
          ? [
              retryLink({ retry: ({ error, attempts }) => attempts < 5 && error.message === TOKEN_EXPIRED }),
              subscriptions,
            ]
          : subscriptions,
        false: httpBatchLink({
          url: `${app.baseUrl}${TRPC_PATH}`,
          headers: async () => ({ authorization: `Bearer ${await token()}` }),
        }),
      }),
    ],
  });
}

interface Received {
  items: { id: string; type: string }[];
  errors: { code?: string; message: string }[];
  stop(): void;
}

/** Subscribes to the tenant's context feed and records what arrives. */
function watchContext(client: TRPCClient<AppRouter>, lastEventId?: string): Received {
  const received: Received = { items: [], errors: [], stop: () => {} };
  const subscription = client.context.onStatusChanged.subscribe(lastEventId ? { lastEventId } : {}, {
    onData: ({ id, data }) => received.items.push({ id, type: data.type }),
    onError: (error) => received.errors.push({ code: error.data?.code, message: error.message }),
  });
  received.stop = () => subscription.unsubscribe();
  closers.push(received.stop);
  return received;
}

/** Publishes `count` context events for the tenant. */
async function publish(tenantId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) await app.pulse.services.context.reset(tenantId);
    else await app.pulse.services.context.complete(tenantId, `# context ${i}`);
  }
}

const eventIds = (received: Received) =>
  received.items.filter((item) => item.type === "context:status_changed").map((item) => item.id);

describe("subscriptions as server-sent events", () => {
  it("carry the WebSocket's items with its ids, and resume after lastEventId with every later event once, in order", async () => {
    const tenant = await createQuietTenant(app);
    const sse = watchContext(sseClient(() => tenant.token));
    const ws = connectClient(app, tenant.token);
    closers.push(() => void ws.close());
    const overWs = watchContext(ws.trpc);
    await eventually(
      () => [sse.items.length, overWs.items.length],
      ([a, b]) => a === 1 && b === 1,
      "both snapshots",
    );
    expect(sse.items[0]!.type).toBe("snapshot");

    await publish(tenant.tenantId, 6);
    await eventually(
      () => eventIds(sse).length,
      (n) => n === 6,
      "six events over SSE",
    );
    await eventually(
      () => eventIds(overWs).length,
      (n) => n === 6,
      "six events over WebSocket",
    );
    expect(eventIds(sse)).toEqual(eventIds(overWs));

    // Resumed from the third: the fourth on, no snapshot, then live events as they come.
    const resumed = watchContext(
      sseClient(() => tenant.token),
      eventIds(sse)[2],
    );
    await eventually(
      () => resumed.items.length,
      (n) => n === 3,
      "the replay",
    );
    await publish(tenant.tenantId, 2);
    await eventually(
      () => eventIds(sse).length,
      (n) => n === 8,
      "the later events",
    );
    await eventually(
      () => resumed.items.length,
      (n) => n === 5,
      "the later events resumed",
    );
    expect(resumed.items.map((item) => item.id)).toEqual(eventIds(sse).slice(3));
    expect(new Set(resumed.items.map((item) => item.id)).size).toBe(5);
    for (const r of [sse, overWs, resumed]) r.stop();
    expect(resumed.errors).toEqual([]);
  });

  it("carry one tenant's events only, and answer another tenant's event id as NOT_FOUND", async () => {
    const owner = await createQuietTenant(app);
    const other = await createQuietTenant(app);
    const theirs = watchContext(sseClient(() => owner.token));
    const mine = watchContext(sseClient(() => other.token));
    await eventually(
      () => [theirs.items.length, mine.items.length],
      ([a, b]) => a === 1 && b === 1,
      "both snapshots",
    );
    await publish(owner.tenantId, 3);
    await eventually(
      () => eventIds(theirs).length,
      (n) => n === 3,
      "the owner's events",
    );
    const foreign = watchContext(
      sseClient(() => other.token),
      eventIds(theirs)[0],
    );
    await eventually(
      () => foreign.errors.length,
      (n) => n === 1,
      "the foreign cursor refused",
    );
    expect(foreign.errors[0]!.code).toBe("NOT_FOUND");
    expect(foreign.items).toEqual([]);
    expect(eventIds(mine)).toEqual([]);
    theirs.stop();
    mine.stop();
  });

  it("end when their token is about to expire; the client subscribes again with a fresh one and loses nothing", async () => {
    const tenant = await createQuietTenant(app);
    let issued = 0;
    const socketToken = async () => {
      issued += 1;
      return (await app.pulse.services.auth.issueSocketToken(tenant.session)).token;
    };
    const received = watchContext(sseClient(socketToken, { retryExpired: true }));
    await eventually(
      () => received.items.length,
      (n) => n === 1,
      "the snapshot",
    );
    // Events before, across and after the stream's end (2 s after it opened).
    for (let round = 0; round < 8; round++) {
      await publish(tenant.tenantId, 1);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await eventually(
      () => eventIds(received).length,
      (n) => n === 8,
      "every event",
      20_000,
    );
    expect(issued).toBeGreaterThanOrEqual(2);
    const ids = eventIds(received);
    expect(new Set(ids).size).toBe(8);
    expect([...ids].sort()).toEqual(ids);
    expect(received.errors).toEqual([]);
    received.stop();
  });

  it("end with UNAUTHORIZED when their session is revoked (a logout in any process)", async () => {
    const tenant = await createQuietTenant(app);
    const received = watchContext(sseClient(() => tenant.token));
    await eventually(
      () => received.items.length,
      (n) => n === 1,
      "the snapshot",
    );
    await eventually(
      () => app.http.eventStreams.size,
      (n) => n >= 1,
      "the stream registered",
    );
    await app.pulse.services.auth.revokeSession(tenant.session.sessionId);
    await eventually(
      () => received.errors.length,
      (n) => n === 1,
      "the stream ended",
    );
    expect(received.errors[0]).toMatchObject({
      code: "UNAUTHORIZED",
      message: "your session has ended: sign in again",
    });
  });

  it("count against the per-user cap, and free their place when they end", async () => {
    const tenant = await createQuietTenant(app);
    const client = sseClient(() => tenant.token);
    const open = [watchContext(client), watchContext(client), watchContext(client)];
    await eventually(
      () => open.map((r) => r.items.length),
      (counts) => counts.every((n) => n === 1),
      "three streams",
    );
    const fourth = watchContext(client);
    await eventually(
      () => fourth.errors.length,
      (n) => n === 1,
      "the fourth refused",
    );
    expect(fourth.errors[0]!.code).toBe("TOO_MANY_REQUESTS");
    open[0]!.stop();
    await eventually(
      () => app.http.eventStreams.registry.connectionsOfUser(tenant.userId),
      (n) => n === 2,
      "the first stream's place freed",
    );
    const fifth = watchContext(client);
    await eventually(
      () => fifth.items.length,
      (n) => n === 1,
      "a stream in the freed place",
    );
    for (const r of [...open, fifth]) r.stop();
  });

  it("are counted per transport in the metrics", async () => {
    const text = await app.pulse.services.metrics.scrape();
    expect(text).toMatch(/pulse_subscriptions\{transport="sse"\} \d+/);
    expect(text).toMatch(/pulse_events_delivered_total\{transport="sse"\} [1-9]/);
    expect(text).toMatch(/pulse_sse_refused_total\{reason="per_user"\} [1-9]/);
  });
});
