import type { Page } from "playwright-core";
import { afterAll, describe, expect, inject, it } from "vitest";
import { indicatorTexts, recordIndicator, waitForConnection } from "./support/browser";
import { dashboardSuite } from "./support/dashboard-suite";
import { PulseProcess } from "./support/pulse-process";
import { OUTSIDE_AGENT } from "./support/tenant";
import { UpgradeGate } from "./support/upgrade-gate";

/**
 * A page that polls while its tenant is over its HTTP call rate, in a real browser: the
 * server refuses the polls (429, TOO_MANY_REQUESTS with `retryAfterSeconds`), and the page
 * must not take a server that answers for one it cannot reach.
 */

const CALLS_PER_SECOND = 10;
const suite = dashboardSuite(() =>
  new PulseProcess({
    REDIS_URL: inject("redisUrl"),
    DEMO_SPEED: "0.25",
    EXTERNAL_AGENT_ROLES: OUTSIDE_AGENT,
    HTTP_CALLS_PER_SECOND_PER_TENANT: String(CALLS_PER_SECOND),
  }).start(),
);
const gates: UpgradeGate[] = [];
// Registered after the suite's: runs before it closes the browser and Pulse.
afterAll(async () => {
  for (const gate of gates) await gate.stop();
});

const progressShown = (page: Page) =>
  page.locator("[data-testid=run-detail] [role=progressbar]").getAttribute("aria-valuenow");

/**
 * Another client of the tenant spending its whole call budget: `loops` callers, each sending a
 * call every 40 ms and giving up on it soon after (the server charges a call when it arrives,
 * and holds a refusal a second), so the budget's refill is taken as it comes, until `stop()`:
 * with 5, over 100 calls a second against a refill of 10, few of the page's polls pass.
 */
function spendBudget(baseUrl: string, token: string, loops: number) {
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      void fetch(`${baseUrl}/api/trpc/auth.me`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(200),
      })
        .then((res) => res.arrayBuffer())
        .catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
  };
  const running = Array.from({ length: loops }, loop);
  return async () => {
    stopped = true;
    await Promise.all(running);
  };
}

/** A new tenant whose setup chain has finished, asked after slowly enough to stay within its budget. */
async function settledTenant(who: string) {
  const tenant = await suite.registeredTenant(who);
  for (let i = 0; i < 180 && (await tenant.api.context.get.query())?.status !== "completed"; i++)
    await new Promise((resolve) => setTimeout(resolve, 500));
  return tenant;
}

describe("a polling page over its tenant's call rate", () => {
  it("says it is polling, not that it cannot reach the server, and catches up once calls pass again", async () => {
    const tenant = await settledTenant("rated");
    const { runId, agent } = await suite.outsideRun(tenant.api);
    const proxy = await new UpgradeGate({ host: "127.0.0.1", port: suite.pulse.port }).start();
    gates.push(proxy);
    // No WebSocket and no event stream through the proxy: the page polls.
    proxy.block();
    proxy.bufferStreams();
    const page = await (await suite.signedIn(tenant.token, { baseUrl: proxy.url })).newPage();
    const history = await recordIndicator(page);
    const polls: number[] = [];
    page.on("response", (response) => {
      if (response.url().includes("agent.events")) polls.push(response.status());
    });
    await page.goto(`${proxy.url}/runs/${runId}`);
    await waitForConnection(page, "polling", 30_000, history);
    await agent.report({ type: "agent:active" });
    await agent.report({ type: "agent:progress", progress: 10, message: "step 10" });
    await expect.poll(() => progressShown(page), { timeout: 15_000 }).toBe("10");

    // Another client takes the tenant's budget until the page has had three polls refused in a
    // row: without honouring the refusal, two failed polls in a row say "Cannot reach the server".
    const stopSpending = spendBudget(suite.pulse.url, tenant.token, 5);
    const refusedBefore = polls.length;
    try {
      await expect
        .poll(() => polls.slice(refusedBefore).join(","), { timeout: 120_000, interval: 250 })
        .toMatch(/429,429,429$/);
    } finally {
      await stopSpending();
    }
    await agent.report({ type: "agent:progress", progress: 20, message: "step 20" });
    await expect.poll(() => progressShown(page), { timeout: 60_000 }).toBe("20");

    const texts = await indicatorTexts(page);
    expect(texts, await history()).not.toContain("Cannot reach the server");
    expect(await page.locator("[data-testid=connection]").getAttribute("data-connection")).toBe("polling");
    await page.context().close();
    // Each wait is bounded on its own (the tenant's set-up, three refusals in a row, the catch-up).
  }, 300_000);
});
