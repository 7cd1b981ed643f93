import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { compareStreamIds } from "../src/shared/stream-id";
import { eventually, openTestPostgres } from "../src/test/harness";
import { ARTIFACTS, applied, launchChromium, recordApplied, screenshot } from "./support/browser";
import { OutsideAgent } from "./support/outside-agent";
import { PulseProcess } from "./support/pulse-process";
import { newEmail, OUTSIDE_AGENT, PASSWORD } from "./support/tenant";
import { UpgradeGate } from "./support/upgrade-gate";

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

async function signedIn(pulse: PulseProcess, token: string, baseUrl = pulse.url): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  await context.addCookies([{ name: "pulse_session", value: token, url: baseUrl, httpOnly: true, sameSite: "Lax" }]);
  return context;
}

/** Records each change of `data-status` on elements with a data-testid, from now on. */
async function watchStatuses(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __statuses: string[]; __runIds: Set<string> };
    w.__statuses = [];
    w.__runIds = new Set();
    const note = (el: Element) => {
      const id = el.getAttribute("data-testid");
      if (id && el.hasAttribute("data-status")) w.__statuses.push(`${id}=${el.getAttribute("data-status")}`);
      const runId = el.getAttribute("data-run-id");
      if (runId) w.__runIds.add(runId);
    };
    document.querySelectorAll("[data-run-id]").forEach(note);
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        if (m.type === "attributes" && m.target instanceof Element) note(m.target);
        m.addedNodes.forEach(
          (n) => n instanceof Element && [n, ...n.querySelectorAll("[data-status],[data-run-id]")].forEach(note),
        );
      }
    }).observe(document.body, {
      subtree: true,
      childList: true,
      attributes: true,
      attributeFilter: ["data-status", "data-run-id"],
    });
  });
}

const statuses = (page: Page) =>
  page.evaluate(() => (window as unknown as { __statuses: string[] }).__statuses.slice());
const runIdsSeen = (page: Page) => page.evaluate(() => [...(window as unknown as { __runIds: Set<string> }).__runIds]);

describe("the dashboard in a real browser", () => {
  let pulse: PulseProcess;
  beforeAll(async () => {
    // Trace level: the share test checks that not even the request log holds a token.
    pulse = await new PulseProcess({
      REDIS_URL: inject("redisUrl"),
      DEMO_SPEED: "0.25",
      LOG_LEVEL: "trace",
      EXTERNAL_AGENT_ROLES: OUTSIDE_AGENT,
    }).start();
  });
  afterAll(async () => {
    await pulse?.stop();
  });

  it("shows a new tenant's setup chain live on /settings/context, in every tab of the tenant and none of another", async () => {
    // Another tenant, set up and quiet, watching its own context page throughout.
    const other = await pulse
      .api()
      .auth.register.mutate({ email: newEmail("other"), password: PASSWORD, tenantName: "Other Co" });
    await eventually(
      () => pulse.api(other.token).context.get.query(),
      (c) => c?.status === "completed",
      "the other tenant's chain",
    );
    const otherTab = await (await signedIn(pulse, other.token)).newPage();
    await otherTab.goto(`${pulse.url}/settings/context`);
    await otherTab.locator("[data-testid=context-file][data-status=completed]").waitFor();
    await watchStatuses(otherTab);

    // Sign up through the page: it lands on the context page and watches the chain.
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const first = await context.newPage();
    await first.goto(`${pulse.url}/register`);
    await first.fill("input[name=tenantName]", "Acme Logistics");
    await first.fill("input[name=email]", newEmail("acme"));
    await first.fill("input[name=password]", PASSWORD);
    await first.click("button[type=submit]");
    await first.waitForURL(/\/settings\/context$/);
    await first.locator("[data-connection=live]").waitFor();
    await first.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
    await watchStatuses(first);
    const second = await context.newPage();
    await second.goto(`${pulse.url}/settings/context`);
    await second.locator("[data-connection=live]").waitFor();
    await watchStatuses(second);

    await first.locator("[data-testid=approve-banner]").waitFor({ timeout: 60_000 });
    await expect.poll(() => first.locator("[data-testid=context-content]").textContent()).toContain("# Context file");
    for (const role of ["client-researcher", "competitor-researcher", "context-file-writer"]) {
      await first.locator(`[data-testid=chain-${role}][data-status=completed]`).waitFor();
    }
    await screenshot(first, "context-page");
    const seenByFirst = await statuses(first);
    expect(seenByFirst).toContain("context-file=completed");
    expect(seenByFirst).toContain("chain-context-file-writer=completed");
    // The writer was still to run when the second tab opened, so it saw it happen too.
    await second.locator("[data-testid=context-file][data-status=completed]").waitFor();
    expect(await statuses(second)).toContain("chain-context-file-writer=completed");

    await first.getByRole("button", { name: "Approve" }).click();
    await first.locator("[data-testid=context-file][data-status=approved]").waitFor();
    await second.locator("[data-testid=context-file][data-status=approved]").waitFor();
    expect(await first.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);

    const token = (await context.cookies()).find((c) => c.name === "pulse_session")!.value;
    const acmeRuns = (await pulse.api(token).agent.list.query({ limit: 50 })).runs.map((r) => r.id);
    expect(acmeRuns.length).toBeGreaterThanOrEqual(3);
    expect(await statuses(otherTab)).toEqual([]);
    expect((await runIdsSeen(otherTab)).filter((id) => acmeRuns.includes(id))).toEqual([]);
    await context.close();
  });

  it("flips the Run button's panel to queued at once, confirms from the server, and says when it is already running", async () => {
    const tenant = await pulse
      .api()
      .auth.register.mutate({ email: newEmail("runner"), password: PASSWORD, tenantName: "Runner Co" });
    const api = pulse.api(tenant.token);
    await eventually(
      () => api.context.get.query(),
      (c) => c?.status === "completed",
      "the setup chain",
    );
    const page = await (await signedIn(pulse, tenant.token)).newPage();
    await page.goto(`${pulse.url}/`);
    await page.locator("[data-connection=live]").waitFor();
    const panel = '[data-testid="agent-client-researcher"]';

    const latencies: number[] = [];
    for (let click = 0; click < 5; click++) {
      // Measured in the page: from the click to the server's confirmation replacing the optimistic state.
      const result = await page.evaluate(async (selector) => {
        const el = document.querySelector(selector)!;
        const before = el.getAttribute("data-run-id");
        const states: string[] = [];
        const start = performance.now();
        return new Promise<{ ms: number; states: string[] }>((resolve) => {
          const check = () => {
            states.push(`${el.getAttribute("data-status")}/${el.getAttribute("data-confirmed")}`);
            if (
              el.getAttribute("data-confirmed") === "true" &&
              el.getAttribute("data-run-id") &&
              el.getAttribute("data-run-id") !== before
            ) {
              observer.disconnect();
              resolve({ ms: performance.now() - start, states });
            }
          };
          const observer = new MutationObserver(check);
          observer.observe(el, { attributes: true });
          (el.querySelector('button[aria-label^="Run "]') as HTMLButtonElement).click();
        });
      }, panel);
      expect(result.states[0]).toBe("queued/false");
      latencies.push(result.ms);
      await page
        .locator(`${panel}[data-status=active]`)
        .or(page.locator(`${panel}[data-status=completed]`))
        .waitFor();
      if (click === 2) await screenshot(page, "dashboard");
      await page.locator(`${panel}[data-status=completed]`).waitFor({ timeout: 30_000 });
    }

    // While a run is going, the server says no, and the panel says so.
    await page.click(`${panel} button[aria-label^="Run "]`);
    await page.locator(`${panel}[data-status=active]`).waitFor();
    await page.click(`${panel} button[aria-label^="Run "]`);
    await expect.poll(() => page.locator(`${panel} [role=alert]`).textContent()).toBe("Already running");

    const runId = await page.locator(panel).getAttribute("data-run-id");
    await page.locator(`${panel}[data-status=completed]`).waitFor({ timeout: 30_000 });
    await page.goto(`${pulse.url}/runs/${runId}`);
    await page.locator("[data-testid=run-detail][data-status=completed]").waitFor();
    await expect.poll(() => page.locator("[data-testid=timeline] li").count()).toBeGreaterThan(5);
    await page.locator("[data-testid=run-logs] summary").click();
    await screenshot(page, "run-detail");
    // A narrow window keeps everything reachable.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${pulse.url}/`);
    await page.locator("[data-connection=live]").waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot(page, "dashboard-narrow");

    const sorted = [...latencies].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(
      path.join(ARTIFACTS, "..", "run-button-latency.json"),
      JSON.stringify({ latenciesMs: latencies, medianMs: median }, null, 2),
    );
    console.log(
      `click → server-confirmed: median ${median.toFixed(1)} ms over ${latencies.length} clicks (${latencies.map((l) => l.toFixed(1)).join(", ")})`,
    );
  });

  it("lets someone outside the tenant watch a shared run live, until the link is stopped", async () => {
    const tenant = await pulse
      .api()
      .auth.register.mutate({ email: newEmail("sharer"), password: PASSWORD, tenantName: "Sharer Co" });
    const api = pulse.api(tenant.token);
    await eventually(
      () => api.context.get.query(),
      (c) => c?.status === "completed",
      "the setup chain",
    );
    // A run of an outside agent this test plays, so the run ends only once the viewer watches.
    const { runId, reportToken } = await api.agent.run.mutate({ agentRole: OUTSIDE_AGENT });
    const agent = new OutsideAgent(pulse.url, runId, reportToken!);
    await agent.report({ type: "agent:active" });
    const member = await (await signedIn(pulse, tenant.token)).newPage();
    await member.goto(`${pulse.url}/runs/${runId}`);
    await member.getByRole("button", { name: "Share", exact: true }).click();
    const link = await member.getByLabel("Share link").inputValue();
    // The token is in the fragment: the browser never sends it, so no server or proxy logs it.
    expect(link).toMatch(new RegExp(`^${pulse.url}/share#[^/#]+$`));
    const token = link.split("#")[1]!;
    const pathsRequested: string[] = [];

    // A browser that never signed in: the link is its only credential.
    const viewer = await (await browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
    viewer.on("request", (request) =>
      pathsRequested.push(new URL(request.url()).pathname + new URL(request.url()).search),
    );
    await recordApplied(viewer);
    await viewer.goto(link);
    await viewer.locator("[data-connection=live]").waitFor();
    await viewer.locator("[data-testid=run-detail][data-status=active]").waitFor();
    // Now the agent works and finishes, while the viewer watches.
    await agent.report({ type: "agent:step", stepId: "read", name: "Read the brief", status: "started" });
    await agent.report({ type: "agent:log", level: "info", message: "read 3 pages" });
    for (let i = 1; i <= 30; i++)
      await agent.report({ type: "agent:progress", progress: i * 3, message: `Reading page ${i}` });
    await agent.report({ type: "agent:output", chunk: "The brief, summarised.\n" });
    await agent.report({ type: "agent:step", stepId: "read", name: "Read the brief", status: "completed" });
    await agent.report({ type: "agent:completed" });
    await viewer.locator("[data-testid=run-detail][data-status=completed]").waitFor({ timeout: 30_000 });
    expect((await applied(viewer)).map((a) => a.type)).toContain("agent:completed");
    await expect.poll(() => viewer.locator("[data-testid=timeline] li").count()).toBeGreaterThan(3);
    // The timeline holds more than it shows, and shows the newest.
    const timeline = viewer.locator("[data-testid=timeline]");
    await expect
      .poll(() =>
        timeline.evaluate(
          (el) => el.scrollHeight > el.clientHeight && el.scrollHeight - el.scrollTop - el.clientHeight <= 24,
        ),
      )
      .toBe(true);
    // Its logs, from the database now that it has finished.
    await viewer.locator("[data-testid=run-logs] summary").click();
    await expect.poll(() => viewer.locator("[data-testid=run-logs] li").count()).toBeGreaterThan(0);
    // Read-only: nothing to act with, and no way into the rest of the tenant.
    expect(await viewer.getByRole("button", { name: /Cancel|Retry|Share/ }).count()).toBe(0);
    await screenshot(viewer, "shared-run");
    // The token reached the server as a credential only, never in an address.
    expect(pathsRequested.filter((p) => p.includes(token))).toEqual([]);
    // A link of the old form moves its token into the fragment and opens the same run.
    await viewer.goto(`${pulse.url}/shared/${token}`);
    await viewer.waitForURL(link);
    await viewer.locator("[data-testid=run-detail][data-status=completed]").waitFor();

    await member.getByRole("button", { name: "Stop sharing" }).click();
    await member.getByRole("button", { name: "Share", exact: true }).waitFor();
    // The open page learns within the revocation sweep; the link no longer opens anything.
    await viewer.locator("[data-testid=share-ended]").waitFor({ timeout: 30_000 });
    // Away first: going to the address the page already has would only move to its fragment.
    await viewer.goto("about:blank");
    await viewer.goto(link);
    await viewer.locator("[data-testid=share-ended]").waitFor();
    expect(await viewer.locator("[data-testid=run-detail]").count()).toBe(0);
    // Logged at trace level, and not one line holds the token.
    expect(pulse.output).toContain('"msg":"http request"');
    expect(pulse.output).not.toContain(token.split(".").at(-1)!);
  });

  it("retries a cancelled run into a new one, opening it, and says why when a retry does not go through", async () => {
    const tenant = await pulse
      .api()
      .auth.register.mutate({ email: newEmail("retrier"), password: PASSWORD, tenantName: "Retrier Co" });
    const api = pulse.api(tenant.token);
    await eventually(
      () => api.context.get.query(),
      (c) => c?.status === "completed",
      "the setup chain",
    );
    const { runId } = await api.agent.run.mutate({ agentRole: "client-researcher" });
    await api.agent.cancel.mutate({ runId });
    const context = await signedIn(pulse, tenant.token);
    const retryRoute = `${pulse.url}/api/trpc/agent.retry*`;

    // On the dashboard, the role's panel shows the refusal in place of a browser alert.
    const dashboard = await context.newPage();
    await dashboard.goto(`${pulse.url}/`);
    const panel = dashboard.locator("[data-testid=agent-client-researcher]");
    await dashboard.locator("[data-testid=agent-client-researcher][data-status=cancelled]").waitFor();
    await dashboard.route(retryRoute, (route) => route.abort());
    await panel.getByRole("button", { name: "Retry" }).click();
    await expect.poll(() => panel.getByRole("alert").textContent()).toContain("Could not retry");
    await dashboard.close();

    // On the run page: a failed request says so and stays; a retry that goes through opens the new run.
    const page = await context.newPage();
    await page.goto(`${pulse.url}/runs/${runId}`);
    await page.locator("[data-testid=run-detail][data-status=cancelled]").waitFor();
    await page.route(retryRoute, (route) => route.abort());
    await page.getByRole("button", { name: "Retry" }).click();
    await expect.poll(() => page.locator("[data-testid=run-notice]").textContent()).toContain("Could not retry");
    expect(page.url()).toBe(`${pulse.url}/runs/${runId}`);
    await page.unroute(retryRoute);
    await page.getByRole("button", { name: "Retry" }).click();
    await page.waitForURL((url) => url.pathname.startsWith("/runs/") && url.pathname !== `/runs/${runId}`);
    const newRunId = new URL(page.url()).pathname.split("/").at(-1)!;
    const retried = await api.agent.get.query({ runId: newRunId });
    expect(retried.agentRole).toBe("client-researcher");
    await page.locator(`[data-testid=run-detail]:not([data-status=cancelled])`).waitFor();
    expect(await page.locator("[data-testid=run-notice]").count()).toBe(0);
  });

  it("answers another tenant's run, an unknown one and a malformed address with a 404 page", async () => {
    const owner = await pulse
      .api()
      .auth.register.mutate({ email: newEmail("owner"), password: PASSWORD, tenantName: "Owner Co" });
    const stranger = await pulse
      .api()
      .auth.register.mutate({ email: newEmail("stranger"), password: PASSWORD, tenantName: "Stranger Co" });
    // The setup chain's first run, queued at registration.
    const runId = (
      await eventually(
        () => pulse.api(owner.token).agent.list.query({ limit: 1 }),
        (l) => l.runs.length > 0,
        "the owner's first run",
      )
    ).runs[0]!.id;

    const ownerPage = await (await signedIn(pulse, owner.token)).newPage();
    expect((await ownerPage.goto(`${pulse.url}/runs/${runId}`))?.status()).toBe(200);
    await ownerPage.locator("[data-testid=run-detail]").waitFor();

    const strangerPage = await (await signedIn(pulse, stranger.token)).newPage();
    for (const address of [`/runs/${runId}`, "/runs/no-such-run", `/runs/${"x".repeat(200)}`]) {
      expect((await strangerPage.goto(`${pulse.url}${address}`))?.status(), address).toBe(404);
      await strangerPage.locator("[data-testid=not-found]").waitFor();
      expect(await strangerPage.locator("[data-testid=run-detail]").count()).toBe(0);
    }
    // A malformed percent-encoding is the client's error, not the server's.
    for (const address of ["/runs/%E0%A4%A", "/%", "/api/trpc/agent.get%E0%A4%A"]) {
      expect((await fetch(`${pulse.url}${address}`)).status, address).toBe(400);
    }
    await strangerPage.getByRole("link", { name: "Back to the dashboard" }).click();
    await strangerPage.waitForURL(`${pulse.url}/`);
  });
});

describe("the polling fallback in a real browser", () => {
  let pulse: PulseProcess;
  let gate: UpgradeGate;
  beforeAll(async () => {
    pulse = await new PulseProcess({ REDIS_URL: inject("redisUrl"), DEMO_SPEED: "1" }).start();
    gate = await new UpgradeGate({ host: "127.0.0.1", port: pulse.port }).start();
  });
  afterAll(async () => {
    await gate?.stop();
    await pulse?.stop();
  });

  it("polls while WebSockets are refused and streams buffered, goes live again after, and applies every event once in order", async () => {
    const tenant = await pulse
      .api()
      .auth.register.mutate({ email: newEmail("cut"), password: PASSWORD, tenantName: "Cut Co" });
    const api = pulse.api(tenant.token);
    const page = await (await signedIn(pulse, tenant.token, gate.url)).newPage();
    await recordApplied(page);
    const polls: number[] = [];
    page.on("request", (request) => request.url().includes("agent.events") && polls.push(Date.now()));
    await page.goto(`${gate.url}/`);
    await page.locator("[data-connection=live]").waitFor();

    // Healthy socket: not one polling request.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(polls).toEqual([]);

    gate.block();
    gate.bufferStreams();
    await page.locator("[data-connection=reconnecting]").waitFor({ timeout: 5_000 });
    await page.locator("[data-connection=polling]").waitFor({ timeout: 15_000 });
    const beforePolling = (await applied(page)).length;
    await expect.poll(async () => (await applied(page)).length, { timeout: 15_000 }).toBeGreaterThan(beforePolling);
    expect(polls.length).toBeGreaterThan(0);
    expect(gate.refusedUpgrades).toBeGreaterThan(0);

    gate.allow();
    await page.locator("[data-connection=live]").waitFor({ timeout: 30_000 });
    await new Promise((r) => setTimeout(r, 1_000));
    const pollsWhenLive = polls.length;
    await new Promise((r) => setTimeout(r, 3_000));
    expect(polls.length).toBe(pollsWhenLive);

    await eventually(
      () => api.context.get.query(),
      (c) => c?.status === "completed",
      "the chain to finish",
      90_000,
    );
    await new Promise((r) => setTimeout(r, 1_000));
    const events = (await applied(page)).filter((a) => a.type !== "snapshot" && a.type !== "resync");
    for (let i = 1; i < events.length; i++) expect(compareStreamIds(events[i]!.id, events[i - 1]!.id)).toBe(1);
    // Every agent event the server has from the first one the page applied: no gap, no extra.
    const serverIds: string[] = [];
    let cursor = "0-0";
    for (;;) {
      const page = await api.agent.events.query({ cursor, limit: 500 });
      serverIds.push(...page.items.filter((i) => i.item.type.startsWith("agent:")).map((i) => i.id));
      if (page.cursor === cursor) break;
      cursor = page.cursor;
    }
    const expected = serverIds.filter((id) => compareStreamIds(id, events[0]!.id) >= 0);
    expect(events.map((e) => e.id)).toEqual(expected);
  });
});

describe.skipIf(!inject("databaseUrl"))("a page whose data cannot be read, in a real browser", () => {
  let pulse: PulseProcess;
  let database: Awaited<ReturnType<typeof openTestPostgres>>;
  /** A connection of the test's own to Pulse's database, to break it under Pulse. */
  let sql: pg.Client;
  beforeAll(async () => {
    database = await openTestPostgres();
    sql = new pg.Client({ connectionString: database.url });
    await sql.connect();
    pulse = await new PulseProcess({
      REDIS_URL: inject("redisUrl"),
      DATABASE_URL: database.url,
      DEMO_SPEED: "0.05",
    }).start();
  });
  afterAll(async () => {
    await pulse?.stop();
    await sql?.end();
    await database?.database.close();
  });

  it("says it could not be loaded (never 'not found'), and Try again shows the run once it can be read", async () => {
    const tenant = await pulse
      .api()
      .auth.register.mutate({ email: newEmail("outage"), password: PASSWORD, tenantName: "Outage Co" });
    const api = pulse.api(tenant.token);
    await eventually(
      () => api.context.get.query(),
      (c) => c?.status === "completed",
      "the setup chain",
    );
    const runId = (await api.agent.list.query({ limit: 1 })).runs[0]!.id;
    const page = await (await signedIn(pulse, tenant.token)).newPage();
    await page.goto(`${pulse.url}/runs/${runId}`);
    await page.locator("[data-testid=run-detail]").waitFor();

    // Only the run's own read fails (the session still verifies): what the page makes of
    // that failure is the run lookup's doing, not the sign-in's.
    await sql.query('ALTER TABLE "AgentRun" RENAME TO "AgentRunAway"');
    try {
      await page.goto(`${pulse.url}/runs/${runId}`);
      await page.locator("[data-testid=page-error]").waitFor();
      expect(await page.locator("[data-testid=not-found]").count()).toBe(0);
      await screenshot(page, "page-error");
    } finally {
      await sql.query('ALTER TABLE "AgentRunAway" RENAME TO "AgentRun"');
    }
    await page.getByRole("button", { name: "Try again" }).click();
    await page.locator("[data-testid=run-detail]").waitFor({ timeout: 30_000 });
    expect(await page.locator("[data-testid=page-error]").count()).toBe(0);
  });
});
