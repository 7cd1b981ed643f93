import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { eventually } from "../src/test/harness";
import { dashboardSuite } from "./support/dashboard-suite";
import { OUTSIDE_AGENT } from "./support/tenant";

/** Issue 19's false states: what the dashboard shows must be what is true, in every view. */

const suite = dashboardSuite();

/** Console errors and uncaught errors of a page, React's hydration errors (#418) among them. */
function pageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (message) => message.type() === "error" && errors.push(message.text()));
  page.on("pageerror", (error) => errors.push(error.message));
  return errors;
}

describe("the dashboard shows what is true", () => {
  it("lists a run's live share links with who made each and when it expires, stops each on its own, and copies without the Clipboard API", async () => {
    const tenant = await suite.settledTenant("sharer");
    const runId = (await tenant.api.agent.list.query({ limit: 1 })).runs[0]!.id;
    const context = await suite.signedIn(tenant.token);
    // Plain HTTP off localhost has no navigator.clipboard.
    await context.addInitScript(() =>
      Object.defineProperty(Navigator.prototype, "clipboard", { get: () => undefined, configurable: true }),
    );
    const page = await context.newPage();
    await page.goto(`${suite.pulse.url}/runs/${runId}`);
    await page.getByRole("button", { name: "Share", exact: true }).click();
    const first = await page.getByLabel("Share link").inputValue();
    console.log(`share link: ${first.length} characters`);
    await page.getByRole("button", { name: "Copy" }).click();
    await expect
      .poll(() => page.locator("[data-testid=copy-status]").textContent())
      .toMatch(/^(Copied|Selected: press Ctrl\+C)/);
    // The link is selected either way, ready to copy by hand if need be.
    expect(
      await page
        .getByLabel("Share link")
        .evaluate((input: HTMLInputElement) => input.value.slice(input.selectionStart ?? 0, input.selectionEnd ?? 0)),
    ).toBe(first);
    const firstId = (await page.locator("[data-testid=share-link-row]").getAttribute("data-share-id"))!;

    // After a reload the link is still listed (without its token, which the server does not keep).
    await page.reload();
    const rows = page.locator("[data-testid=share-link-row]");
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().textContent()).toMatch(new RegExp(`Link by ${tenant.user.email}, made .+, expires .+`));
    // Share again clearly makes another link, and both are listed.
    await page.getByRole("button", { name: "New share link" }).click();
    await expect.poll(() => rows.count()).toBe(2);
    const second = await page.getByLabel("Share link").inputValue();
    expect(second).not.toBe(first);

    const viewer = await (await suite.browser.newContext()).newPage();
    await viewer.goto(first);
    await viewer.locator("[data-testid=run-detail]").waitFor();
    // Stopping the first leaves the second working.
    await page
      .locator(`[data-testid=share-link-row][data-share-id="${firstId}"]`)
      .getByRole("button", { name: /Stop sharing/ })
      .click();
    await expect.poll(() => rows.count()).toBe(1);
    await viewer.locator("[data-testid=share-ended]").waitFor({ timeout: 30_000 });
    const secondViewer = await (await suite.browser.newContext()).newPage();
    await secondViewer.goto(second);
    await secondViewer.locator("[data-testid=run-detail]").waitFor();
    await rows.getByRole("button", { name: /Stop sharing/ }).click();
    await expect.poll(() => rows.count()).toBe(0);
    await page.getByRole("button", { name: "Share", exact: true }).waitFor();
    await secondViewer.locator("[data-testid=share-ended]").waitFor({ timeout: 30_000 });
    await context.close();
  });

  it("draws the setup-chain card from the latest chain itself, whatever ran since and beyond the recent-runs window", async () => {
    const tenant = await suite.settledTenant("chain");
    const { runId } = await tenant.api.agent.run.mutate({ agentRole: "client-researcher" });
    await eventually(
      () => tenant.api.agent.get.query({ runId }),
      (r) => r.status === "completed",
      "the run by hand",
    );
    // More runs since than the dashboard's list of recent runs holds.
    for (let i = 0; i < 31; i++) {
      const { agent } = await suite.outsideRun(tenant.api);
      await agent.report({ type: "agent:active" });
      await agent.report({ type: "agent:completed" });
    }
    const page = await (await suite.signedIn(tenant.token)).newPage();
    for (const address of ["/settings/context", "/"]) {
      await page.goto(`${suite.pulse.url}${address}`);
      await page.locator("[data-connection=live]").waitFor();
      for (const role of ["client-researcher", "competitor-researcher", "context-file-writer"]) {
        expect(
          await page.locator(`[data-testid=chain-${role}]`).getAttribute("data-status"),
          `${address} ${role}`,
        ).toBe("completed");
      }
      expect(await page.locator("[data-testid=chain-eta]").textContent(), address).toBe("Done");
    }
  });

  it("renders times so that server and browser agree in any time zone and locale: no hydration error", async () => {
    const tenant = await suite.settledTenant("zones");
    const finished = (await tenant.api.agent.list.query({ limit: 1 })).runs[0]!.id;
    const active = await suite.outsideRun(tenant.api);
    await active.agent.report({ type: "agent:active" });
    await active.agent.report({ type: "agent:log", level: "info", message: "started" });
    for (const zone of [
      { timezoneId: "America/New_York", locale: "en-US" },
      { timezoneId: "Asia/Tokyo", locale: "de-DE" },
      { timezoneId: "UTC", locale: "en-GB" },
    ]) {
      const context = await suite.signedIn(tenant.token, zone);
      const page = await context.newPage();
      const errors = pageErrors(page);
      for (const address of ["/", `/runs/${active.runId}`, `/runs/${finished}`]) {
        await page.goto(`${suite.pulse.url}${address}`);
        await page.locator("[data-connection=live]").waitFor();
        // Hydrated: the times are the reader's own now, not the server's UTC.
        await expect.poll(() => page.locator("time").first().textContent()).not.toContain("UTC");
        expect(errors, `${zone.timezoneId} ${zone.locale} ${address}`).toEqual([]);
      }
      await context.close();
    }
  });

  it("says a run whose worker went quiet may have stopped, on the panel, the run list and the run page, and 'retrying' the moment the server says so", async () => {
    const tenant = await suite.settledTenant("quiet");
    const context = await suite.signedIn(tenant.token);
    const { runId, agent } = await suite.outsideRun(tenant.api);
    await agent.report({ type: "agent:active" });
    await agent.report({ type: "agent:progress", progress: 25, message: "Reading" });
    const dashboard = await context.newPage();
    await dashboard.goto(`${suite.pulse.url}/`);
    const runPage = await context.newPage();
    await runPage.goto(`${suite.pulse.url}/runs/${runId}`);
    const panel = dashboard.locator(`[data-testid=agent-${OUTSIDE_AGENT}]`);
    const row = dashboard.locator(`[data-testid=run-row][data-run-id="${runId}"]`);
    // The agent says nothing more: every view says so once the threshold has passed.
    for (const notice of [
      panel.locator("[data-testid=quiet-notice]"),
      row.locator("[data-testid=quiet-notice]"),
      runPage.locator("[data-testid=quiet-notice]"),
    ]) {
      await notice.waitFor({ timeout: 60_000 });
      expect(await notice.textContent()).toMatch(/^No update for .+ — the agent may have stopped$/);
    }
    await agent.report({ type: "agent:failed", error: "lost the worker", willRetry: true });
    await dashboard.locator(`[data-testid=agent-${OUTSIDE_AGENT}][data-status=retrying]`).waitFor();
    await dashboard.locator(`[data-testid=run-row][data-run-id="${runId}"][data-status=retrying]`).waitFor();
    await runPage.locator("[data-testid=run-detail][data-status=retrying]").waitFor();
    expect(await dashboard.locator("[data-testid=quiet-notice]").count()).toBe(0);
    expect(await runPage.locator("[data-testid=quiet-notice]").count()).toBe(0);
    await context.close();
  });

  it("gives a role run by an outside agent a panel like the others, 'waiting for the agent' while its run is queued", async () => {
    const tenant = await suite.settledTenant("outside");
    const page = await (await suite.signedIn(tenant.token)).newPage();
    await page.goto(`${suite.pulse.url}/`);
    await page.locator("[data-connection=live]").waitFor();
    const panel = page.locator(`[data-testid=agent-${OUTSIDE_AGENT}]`);
    expect(await panel.getAttribute("data-status")).toBe("idle");
    const { runId, agent } = await suite.outsideRun(tenant.api);
    await page.locator(`[data-testid=agent-${OUTSIDE_AGENT}][data-run-id="${runId}"][data-status=queued]`).waitFor();
    expect(await panel.textContent()).toContain("waiting for the agent");
    await agent.report({ type: "agent:active" });
    await page.locator(`[data-testid=agent-${OUTSIDE_AGENT}][data-status=active]`).waitFor();
    await agent.report({ type: "agent:completed" });
    await page.locator(`[data-testid=agent-${OUTSIDE_AGENT}][data-status=completed]`).waitFor();
    // The chain card is the setup chain's: the outside role is not in it.
    expect(await page.locator(`[data-testid=chain-${OUTSIDE_AGENT}]`).count()).toBe(0);
  });
});
