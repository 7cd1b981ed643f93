import type { BrowserContext, Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { eventually } from "../src/test/harness";
import { countByRule, seriousViolations } from "./support/axe";
import { barColors, contrast, focusRing, themeColor, type FocusRing, type Rgba } from "./support/colors";
import { dashboardSuite, type TenantApi } from "./support/dashboard-suite";
import { OUTSIDE_AGENT, startChainsPulse } from "./support/tenant";

/**
 * Issue 19's last points, where a user sees them: Run again on a finished run, a finished
 * run's empty cards and progress bar, tab titles, reduced motion, the keyboard's focus ring,
 * and the chain card while two chains run at once.
 */

const suite = dashboardSuite(startChainsPulse);

/** An outside agent's run that reported progress and then failed, or was cancelled, without a step or a word of output. */
async function endedRun(api: TenantApi, end: "failed" | "cancelled") {
  const { runId, agent } = await suite.outsideRun(api);
  await agent.report({ type: "agent:active" });
  await agent.report({ type: "agent:progress", progress: 40, message: "Reading the brief" });
  if (end === "failed") await agent.report({ type: "agent:failed", error: "the model refused" });
  else await api.agent.cancel.mutate({ runId });
  return runId;
}

async function openRun(page: Page, runId: string, status?: string) {
  await page.goto(`${suite.pulse.url}/runs/${runId}`);
  await page.locator(`[data-testid=run-detail]${status ? `[data-status=${status}]` : ""}`).waitFor();
}

/** Clicks Run again and waits for the page of the run it started. */
async function runAgain(page: Page, runId: string): Promise<string> {
  await page.getByRole("button", { name: "Run again" }).click();
  await page.waitForURL((url) => url.pathname.startsWith("/runs/") && url.pathname !== `/runs/${runId}`);
  await page.locator("[data-testid=run-detail]").waitFor();
  return new URL(page.url()).pathname.split("/").at(-1)!;
}

describe("finished runs", () => {
  it("offer Run again when completed, failed or cancelled: a new run of the same agent with the same input, on its own, opened at once", async () => {
    const tenant = await suite.registeredTenant("again");
    const page = await (await suite.signedIn(tenant.token)).newPage();

    // Completed: the summarizer writes what its input says, so the new run's output shows it had the same input.
    const input = { documentId: "doc-again", text: "Run it again. Same words. Nothing else." };
    const { runId: first } = await tenant.api.agent.run.mutate({ agentRole: "summarizer", input });
    const firstRun = await eventually(
      () => tenant.api.agent.get.query({ runId: first }),
      (r) => r.status === "completed",
      "the summarizer",
    );
    await openRun(page, first, "completed");
    const again = await runAgain(page, first);
    const second = await eventually(
      () => tenant.api.agent.get.query({ runId: again }),
      (r) => r.status === "completed",
      "the summarizer run again",
    );
    expect(second).toMatchObject({ agentRole: "summarizer", chainId: null, output: firstRun.output });
    await expect.poll(() => page.locator("[data-testid=run-output]").textContent()).toBe(firstRun.output);

    // Failed and cancelled: Retry stays beside it; Run again leaves the old run as it was.
    for (const end of ["failed", "cancelled"] as const) {
      const runId = await endedRun(tenant.api, end);
      await openRun(page, runId, end);
      expect(await page.getByRole("button", { name: "Retry" }).count(), end).toBe(1);
      const next = await runAgain(page, runId);
      expect(await tenant.api.agent.get.query({ runId: next }), end).toMatchObject({
        agentRole: OUTSIDE_AGENT,
        status: "queued",
      });
      expect((await tenant.api.agent.get.query({ runId })).status, end).toBe(end);
      // Still going: nothing to run again until it ends.
      await page.locator("[data-testid=run-detail][data-status=queued]").waitFor();
      expect(await page.getByRole("button", { name: "Run again" }).count(), end).toBe(0);
      await tenant.api.agent.cancel.mutate({ runId: next });
    }
  });

  it("say how they ended, never 'yet', where they have no steps or output; their bar is the danger colour or neutral, with 3:1 on its track, light and dark", async () => {
    const tenant = await suite.registeredTenant("ended");
    const failed = await endedRun(tenant.api, "failed");
    const cancelled = await endedRun(tenant.api, "cancelled");
    const running = await suite.outsideRun(tenant.api);
    await running.agent.report({ type: "agent:active" });
    await running.agent.report({ type: "agent:progress", progress: 40, message: "Reading the brief" });

    const said = (page: Page) =>
      Promise.all([
        page.locator("[data-testid=no-steps]").textContent(),
        page.locator("[data-testid=run-output]").textContent(),
      ]);
    const counts: Record<string, Record<string, number>> = {};
    for (const colorScheme of ["light", "dark"] as const) {
      const context = await suite.signedIn(tenant.token, { colorScheme });
      const page = await context.newPage();
      const bar = page.locator("[data-testid=run-detail] [role=progressbar]");

      await openRun(page, running.runId, "active");
      expect(await said(page)).toEqual(["No steps yet.", "Nothing yet."]);
      const accent = await themeColor(page, "--color-accent");
      expect((await barColors(page, bar)).fill).toEqual(accent);

      await openRun(page, failed, "failed");
      expect(await said(page)).toEqual(["This run failed before it recorded any step.", "No output was written."]);
      const failedBar = await barColors(page, bar);
      expect(failedBar.fill, colorScheme).toEqual(await themeColor(page, "--color-bad"));
      expect(contrast(failedBar.fill, failedBar.track), colorScheme).toBeGreaterThanOrEqual(3);
      counts[`run failed, ${colorScheme}`] = countByRule(await seriousViolations(page));

      await openRun(page, cancelled, "cancelled");
      expect(await said(page)).toEqual([
        "This run was cancelled before it recorded any step.",
        "No output was written.",
      ]);
      const cancelledBar = await barColors(page, bar);
      expect(cancelledBar.fill, colorScheme).not.toEqual(accent);
      expect(isNeutral(cancelledBar.fill), `${colorScheme} ${cancelledBar.fill}`).toBe(true);
      expect(contrast(cancelledBar.fill, cancelledBar.track), colorScheme).toBeGreaterThanOrEqual(3);
      counts[`run cancelled, ${colorScheme}`] = countByRule(await seriousViolations(page));

      // The role's panel and the run list's bars say the same.
      await page.goto(`${suite.pulse.url}/`);
      const panel = page.locator(`[data-testid=agent-${OUTSIDE_AGENT}]`);
      await panel.waitFor();
      const panelBar = await barColors(page, panel.locator("[role=progressbar]"));
      expect(panelBar.fill, colorScheme).toEqual(accent);
      await context.close();
    }
    console.log(`axe serious/critical on ended runs: ${JSON.stringify(counts)}`);
    expect(counts).toEqual(Object.fromEntries(Object.keys(counts).map((name) => [name, {}])));
  });
});

/** A grey: no channel far from the others. */
const isNeutral = ([r, g, b]: Rgba) => Math.max(r, g, b) - Math.min(r, g, b) <= 48;

describe("every page", () => {
  it("is titled with what is open, and a run's title follows its status", async () => {
    const tenant = await suite.registeredTenant("titles");
    const anonymous = await (await suite.browser.newContext()).newPage();
    for (const [path, title] of [
      ["/login", "Sign in · Pulse"],
      ["/register", "Create an account · Pulse"],
    ]) {
      await anonymous.goto(`${suite.pulse.url}${path}`);
      expect(await anonymous.title(), path).toBe(title);
    }
    const page = await (await suite.signedIn(tenant.token)).newPage();
    const { runId, agent } = await suite.outsideRun(tenant.api);
    for (const [path, title] of [
      ["/", "Agents · Pulse"],
      ["/runs", "Runs · Pulse"],
      ["/runs?status=failed", "Runs · Pulse"],
      ["/settings/context", "Context file · Pulse"],
      [`/runs/${runId}`, `${OUTSIDE_AGENT} run (queued) · Pulse`],
      ["/runs/no-such-run", "Not found · Pulse"],
    ]) {
      await page.goto(`${suite.pulse.url}${path}`);
      expect(await page.title(), path).toBe(title);
    }

    // The open run's tab follows it, without a reload.
    await page.goto(`${suite.pulse.url}/runs/${runId}`);
    await page.locator("[data-connection=live]").waitFor();
    await agent.report({ type: "agent:active" });
    await expect.poll(() => page.title()).toBe(`${OUTSIDE_AGENT} run (active) · Pulse`);
    await agent.report({ type: "agent:failed", error: "the model timed out", willRetry: true });
    await expect.poll(() => page.title()).toBe(`${OUTSIDE_AGENT} run (retrying) · Pulse`);
    await agent.report({ type: "agent:active" });
    await agent.report({ type: "agent:completed" });
    await expect.poll(() => page.title()).toBe(`${OUTSIDE_AGENT} run (completed) · Pulse`);
    const summary = await tenant.api.agent.run.mutate({
      agentRole: "summarizer",
      input: { documentId: "doc-title", text: "A title. Another." },
    });
    await page.goto(`${suite.pulse.url}/runs/${summary.runId}`);
    await expect.poll(() => page.title()).toMatch(/^Summarizer run \((queued|active|completed)\) · Pulse$/);

    const shared = await tenant.api.share.create.mutate({ runId, expiresInMinutes: 10 });
    await anonymous.goto(`${suite.pulse.url}${shared.path}`);
    await anonymous.locator("[data-testid=run-detail]").waitFor();
    expect(await anonymous.title()).toBe("Shared run · Pulse");
  });

  it("moves nothing by itself when the system asks for reduced motion: no animation, no transition", async () => {
    const tenant = await suite.registeredTenant("still");
    const { runId, agent } = await suite.outsideRun(tenant.api);
    await agent.report({ type: "agent:active" });
    await agent.report({ type: "agent:progress", progress: 20, message: "Reading" });
    /** The page's running animations and transitions, and every element declaring one that takes time. */
    const motion = (page: Page) =>
      page.evaluate(() => ({
        running: document.getAnimations().map((a) => (a as CSSTransition).transitionProperty ?? a.id),
        declared: [...document.querySelectorAll("*")].flatMap((el) => {
          const style = getComputedStyle(el);
          const moving =
            (style.animationName !== "none" && parseFloat(style.animationDuration) > 0) ||
            (style.transitionProperty !== "none" && style.transitionDuration.split(",").some((d) => parseFloat(d) > 0));
          return moving ? [`${el.tagName.toLowerCase()}.${el.className}`.slice(0, 120)] : [];
        }),
      }));
    const progressTo = async (page: Page, value: number) => {
      await agent.report({ type: "agent:progress", progress: value, message: `At ${value}` });
      await expect
        .poll(() => page.locator("[data-testid=run-detail] [role=progressbar]").getAttribute("aria-valuenow"))
        .toBe(String(value));
    };

    // Without the setting the bar glides: the check below sees motion where there is some.
    const moving = await (await suite.signedIn(tenant.token)).newPage();
    await openRun(moving, runId, "active");
    await moving.locator("[data-connection=live]").waitFor();
    expect((await motion(moving)).declared.length).toBeGreaterThan(0);

    const still: BrowserContext = await suite.signedIn(tenant.token, { reducedMotion: "reduce" });
    const page = await still.newPage();
    for (const path of ["/", `/runs/${runId}`, "/runs", "/settings/context"]) {
      await page.goto(`${suite.pulse.url}${path}`);
      await page.locator("[data-connection=live]").waitFor();
      expect(await motion(page), path).toEqual({ running: [], declared: [] });
    }
    await openRun(page, runId, "active");
    await page.locator("[data-connection=live]").waitFor();
    await progressTo(page, 70);
    expect(await motion(page)).toEqual({ running: [], declared: [] });
    await still.close();
  });

  it("shows the keyboard's focus on every control: an outline of 3:1 or more on what lies behind it, light and dark", async () => {
    const tenant = await suite.registeredTenant("focus");
    const { runId, agent } = await suite.outsideRun(tenant.api);
    await agent.report({ type: "agent:active" });
    await agent.report({ type: "agent:failed", error: "the model refused" });
    const weak: string[] = [];
    let seen = 0;
    for (const colorScheme of ["light", "dark"] as const) {
      const context = await suite.signedIn(tenant.token, { colorScheme });
      const page = await context.newPage();
      for (const path of ["/", "/runs", `/runs/${runId}`, "/settings/context"]) {
        await page.goto(`${suite.pulse.url}${path}`);
        await page.locator("[data-connection=live]").waitFor();
        for (const ring of await tabThrough(page)) {
          seen += 1;
          const problem = ringProblem(ring);
          if (problem) weak.push(`${colorScheme} ${path}: ${ring.element} ${problem}`);
        }
      }
      const anonymous = await (await suite.browser.newContext({ colorScheme })).newPage();
      await anonymous.goto(`${suite.pulse.url}/login`);
      await anonymous.locator("form").waitFor();
      for (const ring of await tabThrough(anonymous)) {
        seen += 1;
        const problem = ringProblem(ring);
        if (problem) weak.push(`${colorScheme} /login: ${ring.element} ${problem}`);
      }
      await context.close();
    }
    console.log(`focus rings checked: ${seen}`);
    expect(seen).toBeGreaterThan(40);
    expect(weak).toEqual([]);
  });
});

/** Tabs from the top of the page until the focus leaves it or comes round again, taking each control's ring. */
async function tabThrough(page: Page): Promise<FocusRing[]> {
  const rings: FocusRing[] = [];
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press("Tab");
    const ring = await focusRing(page);
    if (!ring || ring.element === rings[0]?.element) break;
    rings.push(ring);
  }
  return rings;
}

/** What is wrong with a focus ring, if anything: none drawn, too thin, or too faint on what lies behind it. */
function ringProblem(ring: FocusRing): string | null {
  if (ring.outlineStyle === "none" && ring.boxShadow === "none") return "has no outline";
  if (ring.outlineWidth < 2) return `has a ${ring.outlineWidth} px outline`;
  const ratio = contrast(ring.outline, ring.background);
  return ratio < 3 ? `outline ${ring.outline} on ${ring.background}: ${ratio.toFixed(2)}:1` : null;
}

describe("the chain card", () => {
  it("shows the chain started last while two run at once, though the older queues its next role later", async () => {
    const tenant = await suite.registeredTenant("two-chains");
    // The setup chain (started by registering) is at its first agent when the digest starts.
    await eventually(
      () => tenant.api.agent.list.query({ agentRole: "client-researcher" }),
      (page) => page.runs[0]?.status === "active",
      "the setup chain's first agent",
    );
    const input = { documentId: "doc-two", text: "Two chains at once. One card." };
    const digest = await tenant.api.agent.runChain.mutate({ chain: "digest", input });
    const context = await suite.signedIn(tenant.token);
    const page = await context.newPage();
    await page.goto(`${suite.pulse.url}/`);
    await page.locator("[data-connection=live]").waitFor();
    const card = page.locator("[data-testid=chain-card]");
    expect(await card.locator("h2").textContent()).toBe("Digest");
    // Every title the card shows from here on.
    await card.evaluate((el) => {
      const w = window as unknown as { __titles: string[] };
      w.__titles = [];
      new MutationObserver(() => w.__titles.push(el.querySelector("h2")?.textContent ?? "")).observe(el, {
        subtree: true,
        childList: true,
        characterData: true,
      });
    });

    // The setup chain moves on to its second agent, queued after the digest started.
    const next = await eventually(
      () => tenant.api.agent.list.query({ agentRole: "competitor-researcher" }),
      (list) => list.runs.length > 0,
      "the setup chain's second agent",
      90_000,
    );
    expect(next.runs[0]!.chainId).not.toBe(digest.chainId);
    await page.locator(`[data-testid=agent-competitor-researcher][data-run-id="${next.runs[0]!.id}"]`).waitFor();
    await page.locator("[data-testid=chain-reviewer][data-status=completed]").waitFor({ timeout: 60_000 });
    expect(await card.locator("h2").textContent()).toBe("Digest");
    const titles = await page.evaluate(() => (window as unknown as { __titles: string[] }).__titles);
    expect(titles.filter((t) => t !== "Digest")).toEqual([]);

    // Read again from the server, on both pages with the card.
    for (const address of ["/", "/settings/context"]) {
      await page.goto(`${suite.pulse.url}${address}`);
      expect(await card.locator("h2").textContent(), address).toBe("Digest");
    }
    await context.close();
  });
});
