import type { Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { compareStreamIds } from "../src/shared/stream-id";
import { applied, indicatorTexts, recordApplied, recordIndicator, waitForConnection } from "./support/browser";
import { dashboardSuite } from "./support/dashboard-suite";
import type { OutsideAgent } from "./support/outside-agent";
import { UpgradeGate } from "./support/upgrade-gate";

/**
 * The client's order of transports in a real browser, behind a loopback proxy the test
 * controls: WebSocket, then server-sent events where upgrades are refused, then polling where
 * event streams are buffered too, and back to the WebSocket when upgrades pass again.
 */

const suite = dashboardSuite();
const gates: UpgradeGate[] = [];
// Registered after the suite's: runs before it closes the browser and Pulse.
afterAll(async () => {
  for (const gate of gates) await gate.stop();
});

type Tenant = Awaited<ReturnType<typeof suite.settledTenant>>;

async function gate(): Promise<UpgradeGate> {
  const started = await new UpgradeGate({ host: "127.0.0.1", port: suite.pulse.port }).start();
  gates.push(started);
  return started;
}

/** A run's page behind `via`, recording what it applies, the progress values it shows, and its requests. */
async function runPage(tenant: Tenant, via: UpgradeGate) {
  const { runId, agent } = await suite.outsideRun(tenant.api);
  const page = await (await suite.signedIn(tenant.token, { baseUrl: via.url })).newPage();
  await recordApplied(page);
  await page.addInitScript(() => {
    const w = window as unknown as { __shown: number[] };
    w.__shown = [];
    const note = (el: Element) => {
      const value = Number(el.getAttribute("aria-valuenow"));
      if (w.__shown.at(-1) !== value) w.__shown.push(value);
    };
    document.addEventListener("DOMContentLoaded", () => {
      new MutationObserver((mutations) => {
        for (const m of mutations) {
          if (m.target instanceof Element && m.target.matches("[data-testid=run-detail] [role=progressbar]"))
            note(m.target);
        }
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["aria-valuenow"] });
    });
  });
  const requests = { polls: 0, streams: [] as string[] };
  page.on("request", (request) => {
    if (request.url().includes("agent.events")) requests.polls += 1;
    if (request.resourceType() === "eventsource") requests.streams.push(request.url());
  });
  await page.goto(`${via.url}/runs/${runId}`);
  await page.locator("[data-testid=run-detail]").waitFor();
  return { runId, agent, page, requests };
}

const progressApplied = async (page: Page) => (await applied(page)).filter((a) => a.type === "agent:progress").length;
const shown = (page: Page) => page.evaluate(() => (window as unknown as { __shown: number[] }).__shown.slice());

/** Reports `values` one by one, each only once the page has applied the one before. */
async function reportProgress(agent: OutsideAgent, page: Page, values: number[]): Promise<void> {
  for (const progress of values) {
    const before = await progressApplied(page);
    await agent.report({ type: "agent:progress", progress, message: `step ${progress}` });
    await expect.poll(() => progressApplied(page)).toBe(before + 1);
  }
}

/** Every agent event of the run the server holds from the first the page applied: each applied once, in order, none missing. */
async function expectEveryEventOnce(tenant: Tenant, page: Page, runId: string): Promise<void> {
  const events = (await applied(page)).filter((a) => a.type !== "snapshot" && a.type !== "resync");
  const serverIds: string[] = [];
  let cursor = "0-0";
  for (;;) {
    const found = await tenant.api.agent.events.query({ runId, cursor, limit: 500 });
    serverIds.push(...found.items.filter((i) => i.item.type.startsWith("agent:")).map((i) => i.id));
    if (!found.more && found.cursor === cursor) break;
    cursor = found.cursor;
  }
  expect(events.length).toBeGreaterThan(0);
  for (let i = 1; i < events.length; i++) expect(compareStreamIds(events[i]!.id, events[i - 1]!.id)).toBe(1);
  expect(events.map((e) => e.id)).toEqual(serverIds.filter((id) => compareStreamIds(id, events[0]!.id) >= 0));
}

describe("the client's transports in a real browser", () => {
  it("streams over server-sent events where WebSockets are refused, each event as it happens, returns to the WebSocket, and leaves it again", async () => {
    const tenant = await suite.settledTenant("sse");
    const proxy = await gate();
    proxy.block();
    const { runId, agent, page, requests } = await runPage(tenant, proxy);
    await page.locator("[data-connection=live-http]").waitFor({ timeout: 30_000 });
    expect(await page.locator("[data-testid=connection]").textContent()).toContain("Live (HTTP)");
    expect(proxy.refusedUpgrades).toBeGreaterThan(0);
    // The stream carries a short-lived socket token in its URL (EventSource cannot set headers).
    expect(requests.streams.some((url) => decodeURIComponent(url).includes('connectionParams={"token":'))).toBe(true);

    await agent.report({ type: "agent:active" });
    await reportProgress(agent, page, [10, 20, 30, 40, 50, 60, 70, 80]);
    // Each value reached the page on its own, pushed: not one polling request was made.
    expect((await shown(page)).filter((v) => v >= 10)).toEqual([10, 20, 30, 40, 50, 60, 70, 80]);
    expect(requests.polls).toBe(0);

    proxy.allow();
    await page.locator("[data-connection=live]").waitFor({ timeout: 30_000 });
    const streamsWhenLive = requests.streams.length;
    await reportProgress(agent, page, [85, 90]);
    expect(requests.streams.length).toBe(streamsWhenLive);

    // Upgrades refused mid-session: the open socket is cut, and the page moves to SSE again.
    proxy.block();
    await page.locator("[data-connection=live-http]").waitFor({ timeout: 30_000 });
    expect(requests.streams.length).toBeGreaterThan(streamsWhenLive);
    await reportProgress(agent, page, [95]);
    await agent.report({ type: "agent:completed" });
    await page.locator("[data-testid=run-detail][data-status=completed]").waitFor();
    expect(requests.polls).toBe(0);
    expect((await shown(page)).filter((v) => v >= 10)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 95, 100]);
    await expectEveryEventOnce(tenant, page, runId);
    await page.context().close();
  });

  it("streams over server-sent events where upgrades are held unanswered, and returns to the WebSocket when they pass", async () => {
    const tenant = await suite.settledTenant("held");
    const proxy = await gate();
    proxy.holdUpgrades();
    const { agent, page } = await runPage(tenant, proxy);
    await page.locator("[data-connection=live-http]").waitFor({ timeout: 30_000 });
    // A browser opens one WebSocket to a host at a time: the page's own, held, must be given up
    // on before a probe can find that upgrades pass again.
    proxy.allow();
    await page.locator("[data-connection=live]").waitFor({ timeout: 60_000 });
    await agent.report({ type: "agent:active" });
    await reportProgress(agent, page, [10]);
    await page.context().close();
  });

  it("subscribes again when its socket drops while the page fetches the socket's token", async () => {
    const tenant = await suite.settledTenant("drop");
    const proxy = await gate();
    // The socket opens, then waits for its token; it is cut before the token arrives, so the
    // subscription meets a closed socket (tRPC's client fails it rather than resending it).
    proxy.delay("auth.socketToken", 1_500);
    proxy.cutNextUpgradeAfter(300);
    const { runId, agent, page, requests } = await runPage(tenant, proxy);
    await page.locator("[data-connection=live]").waitFor({ timeout: 30_000 });
    await agent.report({ type: "agent:active" });
    await reportProgress(agent, page, [10, 20]);
    expect(requests.polls).toBe(0);
    await expectEveryEventOnce(tenant, page, runId);
    await page.context().close();
  });

  it("polls where event streams are buffered too, and returns to the WebSocket when upgrades pass again", async () => {
    const tenant = await suite.settledTenant("buffered");
    const proxy = await gate();
    proxy.block();
    proxy.bufferStreams();
    const { runId, agent, page, requests } = await runPage(tenant, proxy);
    await page.locator("[data-connection=polling]").waitFor({ timeout: 30_000 });
    expect(proxy.bufferedStreams).toBeGreaterThan(0);
    expect(proxy.passedStreams).toBe(0);

    await agent.report({ type: "agent:active" });
    await reportProgress(agent, page, [10, 20, 30]);
    expect(requests.polls).toBeGreaterThan(0);

    proxy.allow();
    await page.locator("[data-connection=live]").waitFor({ timeout: 30_000 });
    await reportProgress(agent, page, [40]);
    const pollsWhenLive = requests.polls;
    await reportProgress(agent, page, [50, 60]);
    await agent.report({ type: "agent:completed" });
    await page.locator("[data-testid=run-detail][data-status=completed]").waitFor();
    expect(requests.polls).toBe(pollsWhenLive);
    await expectEveryEventOnce(tenant, page, runId);
    await page.context().close();
  });
});

/** A new tenant's dashboard behind a gate of its own, live on the WebSocket, its indicator recorded. */
async function liveDashboard(name: string) {
  const tenant = await suite.registeredTenant(name);
  const proxy = await gate();
  const page = await (await suite.signedIn(tenant.token, { baseUrl: proxy.url })).newPage();
  const history = await recordIndicator(page);
  await page.goto(`${proxy.url}/`);
  await waitForConnection(page, "live", 30_000, history);
  return { proxy, page, history };
}

describe("the connection indicator in a real browser", () => {
  it("on a page that never connected says Connecting…, then that it cannot reach the server, never Reconnecting", async () => {
    const tenant = await suite.registeredTenant("never");
    const proxy = await gate();
    proxy.block();
    proxy.bufferStreams();
    const page = await (await suite.signedIn(tenant.token, { baseUrl: proxy.url })).newPage();
    const history = await recordIndicator(page);
    await page.goto(`${proxy.url}/`);
    await page.locator("[data-testid=run-list]").waitFor();
    // The page's polls answer (it is reachable, only not live); then the server goes away.
    await waitForConnection(page, "polling", 30_000, history);
    proxy.goDown();
    await waitForConnection(page, "unavailable", 30_000, history);
    const texts = await indicatorTexts(page);
    expect(texts[0]).toBe("Connecting…");
    expect(texts.at(-1)).toBe("Cannot reach the server");
    expect(texts.filter((t) => t.startsWith("Reconnecting"))).toEqual([]);
    await page.context().close();
  });

  it("on a page that lost the server says Reconnecting… without a count that climbs, then unavailable, then Live again", async () => {
    const { proxy, page, history } = await liveDashboard("lost");
    proxy.goDown();
    await waitForConnection(page, "unavailable", 60_000, history);
    proxy.comeBack();
    // A probe every 5 s finds the server, then the socket reconnects on its own backoff (up to
    // 10 s after this many failures), signs in and resumes: a loaded runner needs the margin.
    await waitForConnection(page, "live", 60_000, history);
    const texts = await indicatorTexts(page);
    // It may say Reconnecting… more than once (before unavailable, and when a probe finds the socket again), never with a count.
    expect([...new Set(texts.filter((t) => t.startsWith("Reconnecting")))]).toEqual(["Reconnecting…"]);
    expect(texts).toContain("Real-time updates unavailable");
    expect(texts.at(-1)).toBe("Live ●");
    await page.context().close();
  });

  it("on a page whose server stopped answering (connections held, nothing refused), is Live again once it answers", async () => {
    const { proxy, page, history } = await liveDashboard("silent");
    // The socket is cut; its reconnect's upgrade, the token request and the event stream it
    // tries next are held without an answer, and so is every poll. The page polls once the
    // WebSocket and the event stream have had their time.
    proxy.goSilent();
    await waitForConnection(page, "polling", 60_000, history);
    proxy.comeBack();
    // What was held stays held: the client gives up on each request at its deadline and tries again.
    await waitForConnection(page, "live", 90_000, history);
    expect((await indicatorTexts(page)).at(-1)).toBe("Live ●");
    await page.context().close();
  });
});
