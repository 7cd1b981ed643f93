import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentRemote, startTestPulse, type TestPulse } from "../src/test/harness";
import { launchChromium, screenshot } from "./support/browser";
import { EmbeddedApp } from "./support/embedded-app/embedded-app";

/**
 * Pulse embedded in a product on another origin: a page served from a second loopback port,
 * built on `@pulse/client` installed from its packed tarball (`createPulseClient`,
 * `<PulseProvider>`, `usePulseRun`), calls Pulse over HTTP (CORS) and its WebSocket with a
 * read-only token the product's backend minted through the admin API, and shows a run's
 * status live, in a real Chromium.
 */

const ticker = new AgentRemote("report-writer");
let browser: Browser;
let product: EmbeddedApp;
let pulse: TestPulse;
let tenantId = "";
const ADMIN_KEY = "the-product-backend-admin-key-0123456789";

/** The product's token route: its backend asks Pulse's admin API for a read-only token for the signed-in user. */
async function mintToken(): Promise<{ token: string; tenantId: string }> {
  const res = await fetch(`${pulse.baseUrl}/api/admin/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ tenant: { id: "org_42", name: "Org 42" }, user: { id: "user_7" }, access: "read" }),
  });
  return (await res.json()) as { token: string; tenantId: string };
}

beforeAll(async () => {
  browser = await launchChromium();
  product = await EmbeddedApp.start(async () => (await mintToken()).token);
  pulse = await startTestPulse({
    agents: [ticker.definition],
    security: { allowedOrigins: [product.origin] },
    admin: { key: ADMIN_KEY },
  });
  ({ tenantId } = await mintToken());
});
afterAll(async () => {
  ticker.finish();
  await browser?.close();
  await pulse?.close();
  await product?.close();
});

describe("a product's page on another origin", () => {
  it("shows a run's status live through @pulse/client's hooks over Pulse's WebSocket, with a bearer token and no cookie", async () => {
    const started = await pulse.pulse.services.runs.start(tenantId, ticker.role, { input: {} });
    const page = await browser.newPage();
    const refused: string[] = [];
    page.on("console", (m) => m.type() === "error" && refused.push(m.text()));
    try {
      const openedAt = performance.now();
      await page.goto(`${product.origin}/#pulse=${encodeURIComponent(pulse.baseUrl)}&run=${started.id}`);
      await expect.poll(() => page.textContent("#role")).toBe(ticker.role);
      // Progress reported before the subscription's snapshot would arrive inside that snapshot,
      // not as a live event: report it once the page follows the run.
      await expect.poll(() => page.getAttribute("body", "data-following")).toBe("true");
      ticker.tick(3);
      await expect.poll(() => page.textContent("#progress")).toBe("3");
      const firstLiveMs = performance.now() - openedAt;
      await expect.poll(() => page.getAttribute("body", "data-live")).toBe("true");
      expect(await page.textContent("#connection")).toBe("live");
      ticker.finish();
      await expect.poll(() => page.textContent("#status")).toBe("completed");
      await screenshot(page, "cross-origin-embed");
      expect(refused).toEqual([]);
      expect(await page.context().cookies(pulse.baseUrl)).toEqual([]);
      console.info(
        `cross-origin embed: npm install of the packed @pulse/client and the page's bundle ${Math.round(product.installAndBundleMs)} ms; ` +
          `page bundle ${product.bundleBytes} bytes; page opened to the first live progress event in ${Math.round(firstLiveMs)} ms; ` +
          `install to first live event ${Math.round(product.installAndBundleMs + firstLiveMs)} ms (Pulse's own start not counted)`,
      );
    } finally {
      await page.close();
    }
  });
});
