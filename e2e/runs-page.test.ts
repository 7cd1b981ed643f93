import type { Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { countByRule, seriousViolations } from "./support/axe";
import { formatDuration } from "../src/lib/format";
import { screenshot } from "./support/browser";
import { dashboardSuite } from "./support/dashboard-suite";
import { smallTargets } from "./support/targets";
import { OUTSIDE_AGENT } from "./support/tenant";

/**
 * The runs page (issue 19, "finding things"): a tenant's whole history a page at a time,
 * filters and a search that live in the URL, rows that follow the live feed, relative times
 * with the absolute time on hover, copy buttons for run ids, and a skip link.
 */

const suite = dashboardSuite();
let tenant: Awaited<ReturnType<typeof suite.settledTenant>>;
/** Every run of the tenant, newest first, as the API lists them once the runs below are made. */
let all: { id: string; status: string; agentRole: string; chainId: string | null }[];

/** 30 runs of the outside agent, every fifth failing with a quota error, the rest completed. */
async function outsideRuns(count: number) {
  for (let i = 0; i < count; i++) {
    const { agent } = await suite.outsideRun(tenant.api);
    await agent.report({ type: "agent:active" });
    await agent.report({ type: "agent:progress", progress: 50, message: `Filing batch ${i}` });
    await agent.report(
      i % 5 === 0 ? { type: "agent:failed", error: `quota exceeded for batch ${i}` } : { type: "agent:completed" },
    );
  }
}

beforeAll(async () => {
  tenant = await suite.settledTenant("finder");
  await outsideRuns(30);
  const first = await tenant.api.agent.list.query({ limit: 100 });
  all = first.runs;
  expect(first.nextCursor).toBeNull();
});

/** Console errors and uncaught errors of a page, React's hydration errors (#418) among them. */
function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => message.type() === "error" && errors.push(message.text()));
  page.on("pageerror", (error) => errors.push(error.message));
  return errors;
}

const rowIds = (page: Page) =>
  page.locator("[data-testid=run-row]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-run-id")!));

/** The page once it is live: hydrated and subscribed, so rows follow the feed from here on; its history read. */
async function openRuns(page: Page, query = "") {
  await page.goto(`${suite.pulse.url}/runs${query}`);
  await page.locator("[data-connection=live]").waitFor();
  await page.locator("[data-testid=run-history] table").waitFor();
}

/** The median as PostgreSQL's percentile_cont(0.5) takes it: the middle value, or the mean of the middle two. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The outside agent's history row says what the run list says of its runs: count, success rate, median time. */
async function expectHistoryRow(page: Page) {
  const runs = (await tenant.api.agent.list.query({ agentRole: OUTSIDE_AGENT, limit: 100 })).runs;
  const completed = runs.filter((r) => r.status === "completed");
  const finished = runs.filter((r) => ["completed", "failed", "cancelled"].includes(r.status));
  const tookMs = median(completed.map((r) => Date.parse(r.completedAt!) - Date.parse(r.queuedAt)));
  const row = page.locator(`[data-testid=history-${OUTSIDE_AGENT}]`);
  await expect.poll(() => row.locator("[data-testid=history-runs]").textContent()).toBe(String(runs.length));
  expect(await row.locator("[data-testid=history-success]").textContent()).toBe(
    `${Math.round((completed.length / finished.length) * 100)}%`,
  );
  expect(await row.locator("[data-testid=history-median]").textContent()).toBe(formatDuration(tookMs));
  const bars = await row
    .locator("[data-runs]")
    .evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-runs"))));
  expect(bars).toHaveLength(14);
  expect(bars.reduce((a, b) => a + b, 0)).toBe(runs.length);
}

describe("the runs page", () => {
  it("pages through the whole history once, newest first, with the page in the URL", async () => {
    const page = await (await suite.signedIn(tenant.token)).newPage();
    const errors = pageErrors(page);
    await openRuns(page);
    expect(await page.title()).toBe("Runs · Pulse");
    const first = await rowIds(page);
    expect(first).toEqual(all.slice(0, 25).map((r) => r.id));
    await page.locator("[data-testid=older-page]").click();
    await page.waitForURL(/cursor=/);
    await expect.poll(() => rowIds(page)).toEqual(all.slice(25).map((r) => r.id));
    expect(await page.locator("[data-testid=older-page]").count()).toBe(0);
    // The older page reloads as it was: the cursor is in the URL.
    await page.reload();
    expect(await rowIds(page)).toEqual(all.slice(25).map((r) => r.id));
    await page.locator("[data-testid=newest-page]").click();
    await page.waitForURL((url) => !url.search.includes("cursor"));
    await expect.poll(() => rowIds(page)).toEqual(first);
    expect(errors).toEqual([]);
  });

  it("filters by status, agent and origin, and searches by id prefix, role and error words, all kept in the URL", async () => {
    const page = await (await suite.signedIn(tenant.token)).newPage();
    const errors = pageErrors(page);
    await openRuns(page);
    const failed = all.filter((r) => r.status === "failed").map((r) => r.id);
    expect(failed).toHaveLength(6);

    await page.getByLabel("Status", { exact: true }).selectOption("failed");
    await page.getByRole("button", { name: "Find" }).click();
    await page.waitForURL(/status=failed/);
    await expect.poll(() => rowIds(page)).toEqual(failed);
    // A reload keeps the filter, and the form shows it.
    await page.reload();
    expect(await rowIds(page)).toEqual(failed);
    expect(await page.getByLabel("Status", { exact: true }).inputValue()).toBe("failed");

    await page.getByLabel("Search", { exact: true }).fill("quota exceeded for batch 25");
    await page.getByRole("button", { name: "Find" }).click();
    await page.waitForURL(/q=quota/);
    await expect.poll(() => rowIds(page)).toEqual([all.find((r) => r.status === "failed")!.id]);
    expect(await page.locator("[data-testid=run-word]").textContent()).toBe("quota exceeded for batch 25");

    await page.getByRole("link", { name: "Clear" }).click();
    await page.waitForURL((url) => url.search === "");
    await expect.poll(() => page.locator("[data-testid=run-row]").count()).toBe(25);
    expect(await page.getByLabel("Search", { exact: true }).inputValue()).toBe("");

    const target = all[17]!;
    await page.getByLabel("Search", { exact: true }).fill(target.id.slice(0, 8));
    await page.getByLabel("Search", { exact: true }).press("Enter");
    await expect.poll(() => rowIds(page)).toEqual([target.id]);

    const chain = all.filter((r) => r.chainId !== null).map((r) => r.id);
    expect(chain).toHaveLength(3);
    await openRuns(page, "?origin=chain");
    expect(await rowIds(page)).toEqual(chain);
    expect(await page.getByLabel("Started", { exact: true }).inputValue()).toBe("chain");
    await openRuns(page, "?q=client+researcher");
    expect(await rowIds(page)).toEqual(all.filter((r) => r.agentRole === "client-researcher").map((r) => r.id));
    await openRuns(page, "?role=competitor-researcher&status=running");
    expect(await page.locator("[data-testid=no-runs]").textContent()).toBe("No runs match these filters.");

    // A filter the URL cannot hold is named and left out, not a broken page.
    await openRuns(page, "?from=yesterday&status=failed");
    expect(await page.locator("[data-testid=filter-problems]").textContent()).toContain("from");
    expect(await rowIds(page)).toEqual(failed);
    expect(errors).toEqual([]);
  });

  it("follows the feed: a new run appears on the newest page and its row changes live", async () => {
    const page = await (await suite.signedIn(tenant.token)).newPage();
    await openRuns(page, `?role=${OUTSIDE_AGENT}`);
    const { runId, agent } = await suite.outsideRun(tenant.api);
    const row = page.locator(`[data-testid=run-row][data-run-id="${runId}"]`);
    await row.and(page.locator("[data-status=queued]")).waitFor();
    expect((await rowIds(page))[0]).toBe(runId);
    expect(await row.getByText("waiting for the agent").count()).toBe(1);
    await agent.report({ type: "agent:active" });
    await row.and(page.locator("[data-status=active]")).waitFor();
    await agent.report({ type: "agent:completed" });
    await row.and(page.locator("[data-status=completed]")).waitFor();
    all = (await tenant.api.agent.list.query({ limit: 100 })).runs;
  });

  it("shows each agent's last 14 days from the database (runs per day, success rate, median time) and follows runs that end", async () => {
    const page = await (await suite.signedIn(tenant.token)).newPage();
    await openRuns(page);
    await expectHistoryRow(page);
    const before = Number(
      await page.locator(`[data-testid=history-${OUTSIDE_AGENT}] [data-testid=history-runs]`).textContent(),
    );
    const { agent } = await suite.outsideRun(tenant.api);
    await agent.report({ type: "agent:active" });
    await agent.report({ type: "agent:failed", error: "quota exceeded once more" });
    await expect
      .poll(() => page.locator(`[data-testid=history-${OUTSIDE_AGENT}] [data-testid=history-runs]`).textContent())
      .toBe(String(before + 1));
    await expectHistoryRow(page);
    all = (await tenant.api.agent.list.query({ limit: 100 })).runs;
  });

  it("shows how long ago each run was queued, with the date and time on hover, in the reader's zone", async () => {
    const context = await suite.signedIn(tenant.token, { timezoneId: "Asia/Tokyo", locale: "de-DE" });
    const page = await context.newPage();
    const errors = pageErrors(page);
    await openRuns(page);
    const time = page.locator("[data-testid=run-row] [data-testid=relative-time]").first();
    await expect.poll(() => time.textContent()).toMatch(/^(just now|\d+ s ago|\d+ min ago)$/);
    const iso = (await time.getAttribute("datetime"))!;
    const expected = await page.evaluate(
      (at) => new Date(at).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }),
      iso,
    );
    expect(await time.getAttribute("title")).toBe(expected);
    expect(expected).toMatch(/^\d{2}\.\d{2}\.\d{4}/);
    expect(errors).toEqual([]);
  });

  it("copies a run's whole id from its row", async () => {
    const context = await suite.signedIn(tenant.token);
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: suite.pulse.url });
    const page = await context.newPage();
    await openRuns(page);
    const run = all[3]!;
    const row = page.locator(`[data-testid=run-row][data-run-id="${run.id}"]`);
    await row.getByRole("button", { name: `Copy run id ${run.id}` }).click();
    await expect.poll(() => row.locator("[data-testid=copy-id-status]").textContent()).toBe("Copied");
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(run.id);
  });

  it("copies through the fallback where the page has no clipboard API", async () => {
    const context = await suite.signedIn(tenant.token);
    await context.addInitScript(() => Object.defineProperty(navigator, "clipboard", { value: undefined }));
    const page = await context.newPage();
    await openRuns(page);
    const run = all[4]!;
    const row = page.locator(`[data-testid=run-row][data-run-id="${run.id}"]`);
    await row.getByRole("button", { name: `Copy run id ${run.id}` }).click();
    const status = row.locator("[data-testid=copy-id-status]");
    await expect.poll(() => status.textContent()).not.toBe("");
    // Copied by execCommand, or left selected for the reader: either way the whole id.
    if ((await status.textContent()) !== "Copied")
      expect(await page.evaluate(() => String(window.getSelection()))).toBe(run.id);
  });

  it("offers a skip link first on every page, which moves focus to the content", async () => {
    const page = await (await suite.signedIn(tenant.token)).newPage();
    for (const path of ["/runs", "/", `/runs/${all[0]!.id}`, "/settings/context"]) {
      await page.goto(`${suite.pulse.url}${path}`);
      await page.locator("[data-connection=live]").waitFor();
      await page.keyboard.press("Tab");
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
      await page.keyboard.press("Enter");
      await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe("main");
    }
    const anonymous = await (await suite.browser.newContext()).newPage();
    await anonymous.goto(`${suite.pulse.url}/login`);
    await anonymous.locator("form").waitFor();
    await anonymous.keyboard.press("Tab");
    expect(await anonymous.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
  });

  it("has no serious or critical axe violations and no small targets, wide or narrow, filtered or not", async () => {
    const page = await (await suite.signedIn(tenant.token)).newPage();
    const counts: Record<string, Record<string, number>> = {};
    const targets: Record<string, string[]> = {};
    for (const [name, query, width] of [
      ["runs", "", 1200],
      ["runs filtered", "?status=failed&q=quota", 1200],
      ["runs empty", "?status=running&role=context-file-writer", 1200],
      ["runs older page", "", 1200],
      ["runs narrow", "", 390],
    ] as const) {
      await page.setViewportSize({ width, height: 900 });
      await openRuns(page, query);
      if (name === "runs older page") {
        await page.locator("[data-testid=older-page]").click();
        await page.locator("[data-testid=newest-page]").waitFor();
      }
      counts[name] = countByRule(await seriousViolations(page));
      targets[name] = await smallTargets(page);
      await screenshot(page, name.replaceAll(" ", "-"));
    }
    console.log(`axe serious/critical on the runs page: ${JSON.stringify(counts)}`);
    expect(counts).toEqual(Object.fromEntries(Object.keys(counts).map((name) => [name, {}])));
    expect(targets).toEqual(Object.fromEntries(Object.keys(targets).map((name) => [name, []])));
  });
});

describe("the dark theme", () => {
  it("follows the system's dark setting on every page with no serious or critical axe violations", async () => {
    const context = await suite.signedIn(tenant.token, { colorScheme: "dark" });
    const page = await context.newPage();
    const counts: Record<string, Record<string, number>> = {};
    for (const path of [
      "/",
      "/runs",
      "/runs?status=failed",
      `/runs/${all.find((r) => r.status === "failed")!.id}`,
      `/runs/${all[0]!.id}`,
      "/settings/context",
    ]) {
      await page.goto(`${suite.pulse.url}${path}`);
      await page.locator("[data-connection=live]").waitFor();
      // Dark indeed: the page's background is darker than its text.
      const [background, text] = await page.evaluate(() => [
        getComputedStyle(document.body).backgroundColor,
        getComputedStyle(document.body).color,
      ]);
      expect({ path, background, text }).toEqual({
        path,
        background: expect.stringMatching(/^rgb\((\d|[1-4]\d), /),
        text: expect.stringMatching(/^rgb\(2[0-5]\d, /),
      });
      counts[path] = countByRule(await seriousViolations(page));
    }
    await screenshot(page, "context-page-dark");
    await page.goto(`${suite.pulse.url}/runs`);
    await screenshot(page, "runs-dark");
    console.log(`axe serious/critical in the dark theme: ${JSON.stringify(counts)}`);
    expect(counts).toEqual(Object.fromEntries(Object.keys(counts).map((name) => [name, {}])));
    await context.close();
  });
});
