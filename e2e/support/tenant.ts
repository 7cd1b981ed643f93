import { randomUUID } from "node:crypto";
import type { Browser, BrowserContext, BrowserContextOptions } from "playwright-core";
import { inject } from "vitest";
import { PulseProcess } from "./pulse-process";

export const PASSWORD = "correct horse battery";
/** A role run by an agent outside Pulse, which a test plays to decide when its run moves. */
export const OUTSIDE_AGENT = "outside-agent";
/** A Pulse of a browser test file's own: the demo agents at a quarter speed, and the outside agent's role. */
export function startDashboardPulse(): Promise<PulseProcess> {
  return new PulseProcess({
    REDIS_URL: inject("redisUrl"),
    DEMO_SPEED: "0.25",
    EXTERNAL_AGENT_ROLES: OUTSIDE_AGENT,
  }).start();
}

/**
 * A Pulse whose demo agents take twice their time (a new tenant's first chain, about 50 s,
 * runs long enough for a page to be open while its agents work), with the outside agent's
 * role and the adopter's example: a second named chain ("Digest": summarizer, reviewer).
 */
export function startChainsPulse(): Promise<PulseProcess> {
  return new PulseProcess({
    REDIS_URL: inject("redisUrl"),
    DEMO_SPEED: "2",
    EXTERNAL_AGENT_ROLES: OUTSIDE_AGENT,
    PULSE_CONFIG: "examples/pulse.config.ts",
  }).start();
}

export const newEmail = (who: string) => `${who}-${randomUUID().slice(0, 8)}@example.test`;

/** A browser context signed in with a session token, at `baseUrl` (Pulse's own, unless a proxy's). */
export async function signedIn(
  browser: Browser,
  pulse: PulseProcess,
  token: string,
  options: BrowserContextOptions & { baseUrl?: string } = {},
): Promise<BrowserContext> {
  const { baseUrl = pulse.url, ...contextOptions } = options;
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...contextOptions });
  await context.addCookies([{ name: "pulse_session", value: token, url: baseUrl, httpOnly: true, sameSite: "Lax" }]);
  return context;
}
