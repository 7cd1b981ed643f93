import { stat } from "node:fs/promises";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { PrivateRedisServer } from "../src/server/private-redis-server";
import { eventually } from "../src/test/harness";
import { launchChromium } from "./support/browser";
import { PulseProcess } from "./support/pulse-process";
import { PASSWORD, signedIn } from "./support/tenant";

/**
 * `npm run screenshots`: the README's pictures of the dashboard, taken from the running app
 * into docs/screenshots/ (light and dark, desktop and phone): `/` while the setup chain
 * runs, a finished run's page and the context page with its file to approve. A new tenant
 * of a fresh Pulse, with the demo agents at half speed so a run is caught mid-way.
 */

const OUT = path.resolve(import.meta.dirname, "../docs/screenshots");

/** The four ways the README shows a page: file-name suffix and browser settings. */
const LOOKS = [
  { suffix: "", colorScheme: "light", viewport: { width: 1280, height: 800 } },
  { suffix: "-dark", colorScheme: "dark", viewport: { width: 1280, height: 800 } },
  { suffix: "-mobile", colorScheme: "light", viewport: { width: 390, height: 844 } },
  { suffix: "-mobile-dark", colorScheme: "dark", viewport: { width: 390, height: 844 } },
] as const;

/** Opens `address` in each look and saves what the screen shows. */
async function shoot(browser: Browser, pulse: PulseProcess, token: string, name: string, address: string) {
  for (const { suffix, ...look } of LOOKS) {
    const context = await signedIn(browser, pulse, token, look);
    const page: Page = await context.newPage();
    await page.goto(`${pulse.url}${address}`);
    await page.locator("[data-connection=live]").waitFor();
    // Relative times and the reader's zone settle after hydration.
    await page.waitForTimeout(500);
    const file = path.join(OUT, `${name}${suffix}.png`);
    await page.screenshot({ path: file });
    console.log(`${path.relative(process.cwd(), file)}: ${Math.round((await stat(file)).size / 1024)} KiB`);
    await context.close();
  }
}

const redis = await new PrivateRedisServer().start();
const pulse = await new PulseProcess({ REDIS_URL: redis.url, DEMO_SPEED: "2" }).start();
const browser = await launchChromium();
try {
  const tenant = await pulse
    .api()
    .auth.register.mutate({ email: "maya@acme.example", password: PASSWORD, tenantName: "Acme" });
  const api = pulse.api(tenant.token);
  const runOf = async (role: string) => (await api.agent.list.query({ agentRole: role })).runs[0];

  await eventually(
    () => runOf("competitor-researcher"),
    (run) => run?.status === "active" && run.progress >= 30,
    "the setup chain's second agent under way",
    120_000,
  );
  await shoot(browser, pulse, tenant.token, "dashboard", "/");
  const researched = (await runOf("client-researcher"))!;
  await shoot(browser, pulse, tenant.token, "run", `/runs/${researched.id}`);
  await eventually(
    () => api.context.get.query(),
    (file) => file?.status === "completed",
    "the context file",
    120_000,
  );
  await shoot(browser, pulse, tenant.token, "context-page", "/settings/context");
} finally {
  await browser.close();
  await pulse.stop();
  await redis.stop();
}
