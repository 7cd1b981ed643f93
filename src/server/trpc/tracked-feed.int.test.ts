import { setTimeout as delay } from "node:timers/promises";
import { createTRPCClient, createWSClient, wsLink } from "@trpc/client";
import { afterAll, beforeAll, expect, it } from "vitest";
import WebSocket from "ws";
import { createQuietTenant, eventually, startTestPulse, type TestPulse } from "../../test/harness";
import { startPulseHandler } from "../../test/ws-handler-pair";
import { ContextFeedQuery } from "./routers/context";
import { authedProcedure, router, trackedFeed, type Context } from "./trpc";

/**
 * A feed reaches its socket through `ctx.outlet`, an object the call carries, not through
 * the order in which things happen: a subscription may wrap `trackedFeed` in a generator of
 * its own and await before its first item, and still gets every event, once, in order, with
 * its live events on the WebSocket's fast path.
 */

let app: TestPulse;
/** Items the wrapper's own loop passed on: the live events bypass it, on the wire. */
let passedThrough = 0;

const wrappedRouter = router({
  wrapped: authedProcedure.subscription(async function* ({ ctx, signal }) {
    // Something asynchronous before the feed is first read: once, this threw.
    await delay(30);
    const feed = trackedFeed(
      ctx,
      signal,
      new ContextFeedQuery(ctx.services, ctx.session.tenantId, { from: "snapshot" }),
    );
    await delay(30);
    for await (const item of feed) {
      passedThrough += 1;
      yield item;
    }
  }),
});

beforeAll(async () => {
  app = await startTestPulse({ runWorkers: false });
});

afterAll(async () => {
  await app?.close();
});

it("a subscription that wraps trackedFeed in its own generator and awaits before the first next() gets every event once, in order, live through the wire", async () => {
  const tenant = await createQuietTenant(app);
  const handler = await startPulseHandler<Context>({
    router: wrappedRouter,
    createContext: () => ({
      services: app.pulse.services,
      session: tenant.session,
      setSessionCookie: () => {},
      transport: "ws",
    }),
    subscriptionContext: (ctx, wire) => ({ ...ctx, outlet: wire }),
  });
  const ws = createWSClient({ url: handler.url, WebSocket: WebSocket as unknown as typeof globalThis.WebSocket });
  try {
    const client = createTRPCClient<typeof wrappedRouter>({ links: [wsLink({ client: ws })] });
    const received: { id: string; type: string }[] = [];
    const subscription = client.wrapped.subscribe(undefined, {
      onData: ({ id, data }) => received.push({ id, type: data.type }),
    });
    await eventually(
      () => received.length,
      (n) => n === 1,
      "the snapshot",
    );
    expect(received[0]!.type).toBe("snapshot");
    for (let i = 0; i < 6; i++) {
      if (i % 2 === 0) await app.pulse.services.context.reset(tenant.tenantId);
      else await app.pulse.services.context.complete(tenant.tenantId, `# context ${i}`);
    }
    await eventually(
      () => received.length,
      (n) => n === 7,
      "six events",
    );
    const page = await app.pulse.services.stream.readAfter(tenant.tenantId, received[0]!.id, 100);
    expect(received.slice(1).map((item) => item.id)).toEqual(page.map((entry) => entry.id));
    // Only the snapshot went through the wrapper's loop: the live events took the wire, the fast path.
    expect(passedThrough).toBe(1);
    subscription.unsubscribe();
  } finally {
    await ws.close();
    await handler.close();
  }
});
