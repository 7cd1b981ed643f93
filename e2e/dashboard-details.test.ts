import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { launchChromium } from "./support/browser";
import { OutsideAgent } from "./support/outside-agent";
import { PulseProcess } from "./support/pulse-process";
import { newEmail, OUTSIDE_AGENT, PASSWORD, signedIn } from "./support/tenant";

/**
 * The smaller points of issue 19's item 9, where a user sees them: a new tenant's first
 * chain, a live approval, the timeline's output rows and where the Approve banner stands.
 */

let browser: Browser;
let pulse: PulseProcess;
beforeAll(async () => {
  browser = await launchChromium();
  // The demo agents at twice their time: a new tenant's first chain (about 50 s) runs long
  // enough for the page to be open while its first two agents work.
  pulse = await new PulseProcess({
    REDIS_URL: inject("redisUrl"),
    DEMO_SPEED: "2",
    EXTERNAL_AGENT_ROLES: OUTSIDE_AGENT,
  }).start();
});
afterAll(async () => {
  await browser?.close();
  await pulse?.stop();
});

describe("dashboard details (issue 19, item 9)", () => {
  it("tells a new tenant its first chain has no estimate yet, what runs before the writer, and who approved, live", async () => {
    const email = newEmail("first");
    const tenant = await pulse.api().auth.register.mutate({ email, password: PASSWORD, tenantName: "First Co" });
    const context = await signedIn(browser, pulse, tenant.token);
    const page = await context.newPage();
    await page.goto(`${pulse.url}/settings/context`);
    await page.locator("[data-connection=live]").waitFor();
    // While the researchers run: no "Estimating…" that never resolves, and no "waiting to start".
    const researching = ["client-researcher", "competitor-researcher"].flatMap((role) =>
      ["queued", "active"].map((s) => `[data-testid=chain-${role}][data-status=${s}]`),
    );
    await page.locator(researching.join(", ")).first().waitFor();
    expect(await page.locator("[data-testid=chain-eta]").textContent()).toBe(
      "No time estimate until each agent has run once",
    );
    await page.locator("[data-testid=context-file][data-status=pending]").waitFor();
    expect(await page.locator("[data-testid=context-file] p[aria-live]").textContent()).toBe(
      "The setup agents are gathering what the writer needs.",
    );

    const other = await context.newPage();
    await other.goto(`${pulse.url}/settings/context`);
    await other.locator("[data-connection=live]").waitFor();
    await page.locator("[data-testid=approve-banner]").waitFor({ timeout: 120_000 });
    await expect.poll(() => page.locator("[data-testid=context-content]").count()).toBe(1);
    // The banner follows the text it asks the reader to read.
    const bannerAfterContent = await page.evaluate(() => {
      const content = document.querySelector("[data-testid=context-content]")!;
      const banner = document.querySelector("[data-testid=approve-banner]")!;
      return Boolean(content.compareDocumentPosition(banner) & Node.DOCUMENT_POSITION_FOLLOWING);
    });
    expect(bannerAfterContent).toBe(true);

    await page.getByRole("button", { name: "Approve" }).click();
    // The other tab learns of the approval live, and who made it and when, without a reload.
    const said = other.locator("[data-testid=context-file][data-status=approved] p[aria-live]");
    await expect
      .poll(() => said.textContent())
      .toMatch(new RegExp(`^Approved\\. By ${email.replace(/[.]/g, "\\.")} at .+\\.$`));
    expect(await other.locator("[data-testid=context-file] p[aria-live] time").getAttribute("datetime")).toMatch(
      /^\d{4}-/,
    );
    await context.close();
  });

  it("groups a stretch of streamed output into one timeline row", async () => {
    const tenant = await pulse
      .api()
      .auth.register.mutate({ email: newEmail("output"), password: PASSWORD, tenantName: "Output Co" });
    const api = pulse.api(tenant.token);
    const { runId, reportToken } = await api.agent.run.mutate({ agentRole: OUTSIDE_AGENT });
    const agent = new OutsideAgent(pulse.url, runId, reportToken!);
    const context = await signedIn(browser, pulse, tenant.token);
    const page = await context.newPage();
    await page.goto(`${pulse.url}/runs/${runId}`);
    await page.locator("[data-connection=live]").waitFor();
    await agent.report({ type: "agent:active" });
    for (const chunk of ["one ", "two ", "three "]) await agent.report({ type: "agent:output", chunk });
    await agent.report({ type: "agent:progress", progress: 50, message: "halfway" });
    for (const chunk of ["four ", "five "]) await agent.report({ type: "agent:output", chunk });
    await agent.report({ type: "agent:completed" });
    await page.locator("[data-testid=run-detail][data-status=completed]").waitFor();
    const rows = page.locator("[data-testid=timeline-row] span");
    // "Queued" leads when the page's feed replays the run from its start; the page may also open after it.
    await expect
      .poll(async () => (await rows.allTextContents()).filter((text) => text !== "Queued"))
      .toEqual([
        "Started attempt 1",
        "Output: 3 chunks, 14 characters",
        "50% · halfway",
        "Output: 2 chunks, 10 characters",
        "Completed",
      ]);
    await context.close();
  });
});
