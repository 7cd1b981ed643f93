import type { Page } from "playwright-core";
import { describe, expect, inject, it } from "vitest";
import { applied, recordApplied } from "./support/browser";
import { dashboardSuite } from "./support/dashboard-suite";
import { PulseProcess } from "./support/pulse-process";
import { OUTSIDE_AGENT } from "./support/tenant";

/**
 * A user's tab over the WebSocket connection cap, in a real browser: the server refuses its
 * socket (every call TOO_MANY_REQUESTS, then close 4429), and the tab must say so truthfully
 * and still be live, over server-sent events (their caps are their own), not end up with a
 * subscription that died and an indicator that cycles.
 */

const suite = dashboardSuite(() =>
  new PulseProcess({
    REDIS_URL: inject("redisUrl"),
    DEMO_SPEED: "0.25",
    EXTERNAL_AGENT_ROLES: OUTSIDE_AGENT,
    WS_MAX_CONNECTIONS_PER_USER: "1",
  }).start(),
);

const progressShown = (page: Page) =>
  page.locator("[data-testid=run-detail] [role=progressbar]").getAttribute("aria-valuenow");

describe("a tab over the WebSocket connection cap", () => {
  it("goes live over server-sent events at once and gets every event, while the first tab stays on the WebSocket", async () => {
    const tenant = await suite.settledTenant("capped");
    const { runId, agent } = await suite.outsideRun(tenant.api);
    const open = async () => {
      const page = await (await suite.signedIn(tenant.token)).newPage();
      await recordApplied(page);
      await page.goto(`${suite.pulse.url}/runs/${runId}`);
      return page;
    };
    const first = await open();
    await first.locator("[data-connection=live]").waitFor({ timeout: 30_000 });
    const second = await open();
    await second.locator("[data-connection=live-http]").waitFor({ timeout: 30_000 });

    await agent.report({ type: "agent:active" });
    for (const progress of [30, 60]) {
      await agent.report({ type: "agent:progress", progress, message: `step ${progress}` });
      for (const page of [first, second]) await expect.poll(() => progressShown(page)).toBe(String(progress));
    }
    // The refused tab did not fall back to polling, and both applied the same events.
    expect(await second.locator("[data-testid=connection]").getAttribute("data-connection")).toBe("live-http");
    const ids = async (page: Page) => (await applied(page)).filter((a) => a.type.startsWith("agent:")).map((a) => a.id);
    expect(await ids(second)).toEqual(await ids(first));
    await first.context().close();
    await second.context().close();
  });
});
