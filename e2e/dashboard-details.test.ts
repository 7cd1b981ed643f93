import { describe, expect, it } from "vitest";
import { formatDuration } from "../src/lib/format";
import { eventually } from "../src/test/harness";
import { seriousViolations } from "./support/axe";
import { dashboardSuite } from "./support/dashboard-suite";
import { startChainsPulse } from "./support/tenant";

/**
 * The smaller points of issue 19's item 9, where a user sees them: a new tenant's first
 * chain, a live approval, the timeline's output rows and where the Approve banner stands.
 */

const suite = dashboardSuite(startChainsPulse);

/** A new tenant's outside run, open on its page in a signed-in browser once the page is live. */
async function liveOutsideRun(who: string) {
  const tenant = await suite.registeredTenant(who);
  const { runId, agent } = await suite.outsideRun(tenant.api);
  const context = await suite.signedIn(tenant.token);
  const page = await context.newPage();
  await page.goto(`${suite.pulse.url}/runs/${runId}`);
  await page.locator("[data-connection=live]").waitFor();
  return { api: tenant.api, runId, agent, context, page };
}

describe("dashboard details (issue 19, item 9)", () => {
  it("tells a new tenant its first chain has no estimate yet, what runs before the writer, and who approved, live", async () => {
    const tenant = await suite.registeredTenant("first");
    const context = await suite.signedIn(tenant.token);
    const page = await context.newPage();
    await page.goto(`${suite.pulse.url}/settings/context`);
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
    await other.goto(`${suite.pulse.url}/settings/context`);
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
      .toMatch(new RegExp(`^Approved\\. By ${tenant.user.email.replace(/[.]/g, "\\.")} at .+\\.$`));
    expect(await other.locator("[data-testid=context-file] p[aria-live] time").getAttribute("datetime")).toMatch(
      /^\d{4}-/,
    );
    await context.close();
  });

  it("runs an agent with the input its form is given, and opens the form where Run alone would be refused", async () => {
    const tenant = await suite.registeredTenant("input");
    const context = await suite.signedIn(tenant.token);
    const page = await context.newPage();
    await page.goto(`${suite.pulse.url}/`);
    await page.locator("[data-connection=live]").waitFor();
    const panel = page.locator("[data-testid=agent-summarizer]");
    // The summarizer cannot run without a document: Run opens its form, focused, and starts nothing.
    await panel.getByRole("button", { name: "Run Summarizer" }).click();
    const documentId = panel.getByLabel("Document id");
    await expect.poll(() => documentId.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await panel.getAttribute("data-status")).toBe("idle");
    await documentId.fill("doc-7");
    await panel.getByLabel("Text").fill("First sentence. Second one! Third? Fourth.");
    // A number, a choice and yes-or-no, each showing the role's default.
    const keep = panel.getByLabel("Sentences to keep (optional)");
    const style = panel.getByLabel("Style (optional)");
    expect(await keep.inputValue()).toBe("2");
    expect(await style.inputValue()).toBe("prose");
    expect(await panel.getByLabel("Quote each sentence").isChecked()).toBe(false);
    expect(await seriousViolations(page)).toEqual([]);
    // Out of the schema's bounds, the browser holds the form back: nothing starts.
    await keep.fill("11");
    await panel.getByRole("button", { name: "Run with this input" }).click();
    expect(await keep.evaluate((el) => (el as HTMLInputElement).validity.rangeOverflow)).toBe(true);
    expect(await panel.getAttribute("data-status")).toBe("idle");
    await keep.fill("3");
    await style.selectOption("bullets");
    await panel.getByLabel("Quote each sentence").check();
    await panel.getByRole("button", { name: "Run with this input" }).click();
    await page.locator("[data-testid=agent-summarizer][data-status=completed]").waitFor({ timeout: 60_000 });
    // The run got what the form held: its summary is of that text, three quoted sentences as bullets
    // (a number, a word and a boolean, as the schema wants them), and its log names that document.
    const runId = (await panel.getAttribute("data-run-id"))!;
    await page.goto(`${suite.pulse.url}/runs/${runId}`);
    await expect
      .poll(() => page.locator("[data-testid=run-output]").textContent())
      .toBe('- "First sentence."\n- "Second one!"\n- "Third?"');
    const logs = await tenant.api.agent.logs.query({ runId });
    expect(logs.logs.map((entry) => entry.message)).toContain("summarised doc-7");
    await context.close();
  });

  it("groups a stretch of streamed output into one timeline row", async () => {
    const { agent, context, page } = await liveOutsideRun("output");
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

  it("shows lifecycle events only on request, opens a finished run's output at its top (a live one's at its end), and counts the run's time from being queued", async () => {
    const { api, runId, agent, context, page } = await liveOutsideRun("life");
    // The agent picks the run up a while after it was queued: its time counts from the queue.
    await new Promise((r) => setTimeout(r, 2_000));
    await agent.report({ type: "agent:active" });
    await agent.report({ type: "agent:step", stepId: "read", name: "Read", status: "started" });
    for (let i = 1; i <= 60; i++) await agent.report({ type: "agent:output", chunk: `line ${i}\n` });
    await agent.report({ type: "agent:progress", progress: 60, message: "writing" });
    const output = page.locator("[data-testid=run-output]");
    await expect.poll(() => output.textContent()).toContain("line 60");
    // Live: the output follows its end.
    const position = () =>
      output.evaluate((el) => ({ top: el.scrollTop, bottomGap: el.scrollHeight - el.scrollTop - el.clientHeight }));
    await expect.poll(async () => (await position()).bottomGap).toBeLessThan(2);
    expect((await position()).top).toBeGreaterThan(0);
    await agent.report({ type: "agent:completed" });
    await page.locator("[data-testid=run-detail][data-status=completed]").waitFor();

    const rows = page.locator("[data-testid=timeline-row] span");
    await expect.poll(async () => (await rows.allTextContents()).length).toBeGreaterThan(4);
    await page.locator("[data-testid=lifecycle-only]").check();
    expect((await rows.allTextContents()).filter((text) => text !== "Queued")).toEqual([
      "Started attempt 1",
      "Completed",
    ]);
    await page.locator("[data-testid=lifecycle-only]").uncheck();
    expect(await rows.allTextContents()).toContain("Step started: Read");

    // Finished, opened again: the output starts at its top.
    await page.reload();
    await page.locator("[data-testid=run-detail][data-status=completed]").waitFor();
    await expect.poll(() => output.textContent()).toContain("line 60");
    expect((await position()).top).toBe(0);
    expect((await position()).bottomGap).toBeGreaterThan(0);

    // Took: from being queued to completed, not from the attempt's start.
    const run = await api.agent.get.query({ runId });
    const fromQueue = formatDuration(Date.parse(run.completedAt!) - Date.parse(run.queuedAt));
    expect(fromQueue).not.toBe(formatDuration(Date.parse(run.completedAt!) - Date.parse(run.startedAt!)));
    expect(await page.locator("[data-testid=run-detail] [data-testid=run-took]").textContent()).toBe(
      ` · took ${fromQueue}`,
    );
    await page.goto(`${suite.pulse.url}/runs`);
    expect(
      await page.locator(`[data-testid=run-row][data-run-id="${runId}"] [data-testid=run-took]`).textContent(),
    ).toBe(fromQueue);
    await context.close();
  });

  it("shows the latest chain of any name on the chain card, with its own title and roles", async () => {
    const tenant = await suite.registeredTenant("digest");
    const api = tenant.api;
    const context = await suite.signedIn(tenant.token);
    const page = await context.newPage();
    await page.goto(`${suite.pulse.url}/`);
    await page.locator("[data-connection=live]").waitFor();
    const card = page.locator("[data-testid=chain-card]");
    const roles = () => card.locator("li").evaluateAll((items) => items.map((li) => li.getAttribute("data-testid")));
    expect(await card.locator("h2").textContent()).toBe("Setup chain");
    expect(await roles()).toEqual([
      "chain-client-researcher",
      "chain-competitor-researcher",
      "chain-context-file-writer",
    ]);

    // The setup chain finishes first, so the card shows one chain at a time here (two at once:
    // e2e/dashboard-polish.test.ts).
    await eventually(
      () => api.context.get.query(),
      (c) => c?.status === "completed",
      "the setup chain",
      120_000,
    );
    const input = { documentId: "doc-1", text: "Pulse shows runs live. Nothing is lost." };
    await api.agent.runChain.mutate({ chain: "digest", input });
    // Live: the card moves to the chain that started.
    await expect.poll(() => card.locator("h2").textContent()).toBe("Digest");
    expect(await roles()).toEqual(["chain-summarizer", "chain-reviewer"]);
    await page.locator("[data-testid=chain-reviewer][data-status=completed]").waitFor({ timeout: 60_000 });
    // Read again from the server: the runs carry their chain's name.
    for (const address of ["/", "/settings/context"]) {
      await page.goto(`${suite.pulse.url}${address}`);
      expect(await card.locator("h2").textContent(), address).toBe("Digest");
      expect(await roles(), address).toEqual(["chain-summarizer", "chain-reviewer"]);
      expect(await card.getAttribute("aria-label"), address).toBe("Digest");
    }
    await context.close();
  });
});
