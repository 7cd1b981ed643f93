import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { countByRule, seriousViolations } from "./support/axe";
import { ARTIFACTS } from "./support/browser";
import { dashboardSuite, type TenantApi } from "./support/dashboard-suite";
import { smallTargets } from "./support/targets";
import { OUTSIDE_AGENT } from "./support/tenant";
import { UpgradeGate } from "./support/upgrade-gate";

const suite = dashboardSuite();

/** An outside agent's run, started and reported active, that the test moves from here on. */
async function activeOutsideRun(api: TenantApi) {
  const { runId, agent } = await suite.outsideRun(api);
  await agent.report({ type: "agent:active" });
  await agent.report({ type: "agent:step", stepId: "read", name: "Read the brief", status: "started" });
  await agent.report({ type: "agent:progress", progress: 40, message: "Reading page 4" });
  await agent.report({ type: "agent:output", chunk: "The brief, summarised.\n" });
  await agent.report({ type: "agent:log", level: "info", message: "read 4 pages" });
  return { runId, agent };
}

/**
 * Records what each live region of the page says, every time its words change: what a
 * screen reader would announce.
 */
async function recordAnnouncements(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __announced: string[] };
    w.__announced = [];
    const last = new WeakMap<Element, string>();
    const liveRegion = (node: Node | null): Element | null => {
      const el = node instanceof Element ? node : (node?.parentElement ?? null);
      return el?.closest('[aria-live]:not([aria-live="off"]),[role=status],[role=alert],[role=log]') ?? null;
    };
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        const region = liveRegion(m.target);
        if (!region) continue;
        const text = (region.textContent ?? "").trim();
        if (text && last.get(region) !== text) {
          last.set(region, text);
          w.__announced.push(text);
        }
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}
const announced = (page: Page) =>
  page.evaluate(() => (window as unknown as { __announced: string[] }).__announced.slice());

describe("accessibility in a real browser", () => {
  it("finds no serious or critical axe violations on any page, in any state, wide or narrow", async () => {
    const counts: Record<string, Record<string, number>> = {};
    const details: Record<string, unknown> = {};
    const check = async (page: Page, name: string) => {
      const found = await seriousViolations(page);
      counts[name] = countByRule(found);
      details[name] = found;
    };

    const anonymous = await (await suite.browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
    await anonymous.goto(`${suite.pulse.url}/login`);
    await anonymous.locator("form").waitFor();
    await check(anonymous, "login");
    await anonymous.goto(`${suite.pulse.url}/register`);
    await anonymous.locator("form").waitFor();
    await check(anonymous, "register");

    const tenant = await suite.settledTenant("axe");
    const context = await suite.signedIn(tenant.token);
    const page = await context.newPage();
    await page.goto(`${suite.pulse.url}/settings/context`);
    await page.locator("[data-testid=approve-banner]").waitFor();
    await page.locator("[data-connection=live]").waitFor();
    await check(page, "context");

    await page.goto(`${suite.pulse.url}/`);
    await page.locator("[data-connection=live]").waitFor();
    await page.locator("[data-testid=run-list]").waitFor();
    await check(page, "dashboard");
    // Every role's "Run with input…" form open (the summarizer's number and choice: dashboard-details).
    const forms = page.locator("details[data-testid$=-input]");
    expect(await forms.count()).toBeGreaterThan(0);
    for (const form of await forms.all()) await form.locator("summary").click();
    await expect.poll(() => page.locator("details[open] form").count()).toBe(await forms.count());
    await check(page, "dashboard, input forms open");

    const first = await activeOutsideRun(tenant.api);
    await page.goto(`${suite.pulse.url}/runs/${first.runId}`);
    await page.locator("[data-testid=run-detail][data-status=active]").waitFor();
    await page.locator("[data-connection=live]").waitFor();
    await check(page, "run running");
    await first.agent.report({ type: "agent:completed" });
    await page.locator("[data-testid=run-detail][data-status=completed]").waitFor();
    await check(page, "run completed");

    const shared = await tenant.api.share.create.mutate({ runId: first.runId, expiresInMinutes: 60 });
    const viewer = await (await suite.browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
    await viewer.goto(`${suite.pulse.url}${shared.path}`);
    await viewer.locator("[data-testid=run-detail][data-status=completed]").waitFor();
    await check(viewer, "share");

    const second = await activeOutsideRun(tenant.api);
    await page.goto(`${suite.pulse.url}/runs/${second.runId}`);
    await page.locator("[data-testid=run-detail][data-status=active]").waitFor();
    await second.agent.report({ type: "agent:failed", error: "the model timed out", willRetry: true });
    await page.locator("[data-testid=run-detail][data-status=retrying]").waitFor();
    await check(page, "run retrying");
    await page.goto(`${suite.pulse.url}/`);
    await page.locator(`[data-testid=agent-${OUTSIDE_AGENT}][data-status=retrying]`).waitFor();
    await check(page, "dashboard retrying");
    await tenant.api.agent.cancel.mutate({ runId: second.runId });

    const third = await activeOutsideRun(tenant.api);
    await page.goto(`${suite.pulse.url}/runs/${third.runId}`);
    await page.locator("[data-testid=run-detail][data-status=active]").waitFor();
    await third.agent.report({ type: "agent:failed", error: "the model refused" });
    await page.locator("[data-testid=run-detail][data-status=failed]").waitFor();
    await check(page, "run failed");

    // Narrow, as on a phone: where touch targets crowd.
    await page.setViewportSize({ width: 390, height: 844 });
    await check(page, "run failed, narrow");
    const narrowRunTargets = await smallTargets(page);
    await page.goto(`${suite.pulse.url}/`);
    await page.locator("[data-testid=run-list]").waitFor();
    await check(page, "dashboard, narrow");
    const narrowDashboardTargets = await smallTargets(page);

    // Polling: a proxy that refuses WebSockets and buffers event streams from the start.
    const gate = await new UpgradeGate({ host: "127.0.0.1", port: suite.pulse.port }).start();
    try {
      gate.block();
      gate.bufferStreams();
      const polling = await (await suite.signedIn(tenant.token, { baseUrl: gate.url })).newPage();
      await polling.goto(`${gate.url}/`);
      await polling.locator("[data-connection=polling]").waitFor({ timeout: 30_000 });
      await check(polling, "dashboard polling");
      const pollingRun = await (await suite.signedIn(tenant.token, { baseUrl: gate.url })).newPage();
      await pollingRun.goto(`${gate.url}/runs/${third.runId}`);
      await pollingRun.locator("[data-testid=run-detail][data-status=failed]").waitFor();
      await pollingRun.locator("[data-connection=polling]").waitFor({ timeout: 30_000 });
      await check(pollingRun, "run polling");
      // The server gone: polls fail, and the pages say real-time updates are unavailable.
      gate.goDown();
      await polling.locator("[data-connection=unavailable]").waitFor({ timeout: 30_000 });
      await check(polling, "dashboard unavailable");
      await pollingRun.locator("[data-connection=unavailable]").waitFor({ timeout: 30_000 });
      await check(pollingRun, "run unavailable");
    } finally {
      await gate.stop();
    }

    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(path.join(ARTIFACTS, "..", "axe-counts.json"), JSON.stringify({ counts, details }, null, 2));
    console.log(`axe serious/critical per page: ${JSON.stringify(counts)}`);
    expect(counts).toEqual(Object.fromEntries(Object.keys(counts).map((name) => [name, {}])));
    // Nav, Details, filter chips, run links: every control at least 24 px each way.
    expect(narrowDashboardTargets).toEqual([]);
    expect(narrowRunTargets).toEqual([]);
  });

  it("announces a run's status changes and its error once, politely, and never its streaming output", async () => {
    const tenant = await suite.settledTenant("reader");
    const context = await suite.signedIn(tenant.token);
    const { runId, agent } = await activeOutsideRun(tenant.api);
    const page = await context.newPage();
    await page.goto(`${suite.pulse.url}/runs/${runId}`);
    await page.locator("[data-testid=run-detail][data-status=active]").waitFor();
    await page.locator("[data-connection=live]").waitFor();
    await recordAnnouncements(page);
    for (let i = 5; i <= 9; i++) {
      await agent.report({ type: "agent:progress", progress: i * 10, message: `Reading page ${i}` });
      await agent.report({ type: "agent:output", chunk: `chunk ${i}\n` });
    }
    await expect.poll(() => page.locator("[data-testid=run-output]").textContent()).toContain("chunk 9");
    await agent.report({ type: "agent:failed", error: "the model refused" });
    await page.locator("[data-testid=run-detail][data-status=failed]").waitFor();
    await expect.poll(() => announced(page)).toContain(`${OUTSIDE_AGENT} failed: the model refused`);
    const onRunPage = await announced(page);
    expect(onRunPage.filter((text) => text.includes("failed"))).toEqual([`${OUTSIDE_AGENT} failed: the model refused`]);
    expect(onRunPage.filter((text) => /chunk|Reading page/.test(text))).toEqual([]);
    // Nothing interrupts: no assertive region on the run's card.
    expect(await page.locator("[data-testid=run-detail]").locator("[role=alert], [aria-live=assertive]").count()).toBe(
      0,
    );

    // On the dashboard, the role's panel says "completed" once when its run completes.
    const dashboard = await context.newPage();
    await dashboard.goto(`${suite.pulse.url}/`);
    await dashboard.locator("[data-connection=live]").waitFor();
    await recordAnnouncements(dashboard);
    const next = await activeOutsideRun(tenant.api);
    await dashboard.locator(`[data-testid=agent-${OUTSIDE_AGENT}][data-status=active]`).waitFor();
    for (let i = 5; i <= 9; i++)
      await next.agent.report({ type: "agent:progress", progress: i * 10, message: `Reading page ${i}` });
    await next.agent.report({ type: "agent:completed" });
    await dashboard.locator(`[data-testid=agent-${OUTSIDE_AGENT}][data-status=completed]`).waitFor();
    await expect.poll(() => announced(dashboard)).toContain(`${OUTSIDE_AGENT} completed`);
    const onDashboard = await announced(dashboard);
    expect(onDashboard.filter((text) => text.includes("completed"))).toEqual([`${OUTSIDE_AGENT} completed`]);
    expect(onDashboard.filter((text) => /Reading page/.test(text))).toEqual([]);
    await context.close();
  });
});
