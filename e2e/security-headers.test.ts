import type { ConsoleMessage } from "playwright-core";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { eventually } from "../src/test/harness";
import { dashboardSuite } from "./support/dashboard-suite";
import { PulseProcess } from "./support/pulse-process";

/**
 * Every page of the dashboard, as `npm start` serves it, carries the browser security
 * headers, and works under its Content-Security-Policy in a real Chromium: its inline
 * scripts run, its WebSocket connects, nothing is refused, and no other page can frame it.
 */

const suite = dashboardSuite(() => new PulseProcess({ REDIS_URL: inject("redisUrl"), DEMO_SPEED: "0.25" }).start());
let token: string;
let runId: string;
let shareToken: string;

beforeAll(async () => {
  const tenant = await suite.registeredTenant("headers");
  token = tenant.token;
  // The setup chain's first run, queued at registration.
  runId = (
    await eventually(
      () => suite.pulse.api(token).agent.list.query({ limit: 1 }),
      (l) => l.runs.length > 0,
      "the first run",
    )
  ).runs[0]!.id;
  shareToken = (await suite.pulse.api(token).share.create.mutate({ runId, expiresInMinutes: 60 })).token;
});

/** Each page with its status, whether it is seen signed in (signed in, the sign-in pages redirect), and what shows once its scripts ran. */
const pages = () => [
  { path: "/", status: 200, signedIn: true, ready: "[data-connection=live]" },
  { path: "/login", status: 200, signedIn: false, ready: "form" },
  { path: "/register", status: 200, signedIn: false, ready: "form" },
  { path: `/runs/${runId}`, status: 200, signedIn: true, ready: "[data-testid=run-detail]" },
  { path: "/settings/context", status: 200, signedIn: true, ready: "[data-connection=live]" },
  { path: `/shared/${shareToken}`, status: 200, signedIn: false, ready: "[data-connection=live]" },
  { path: "/no-such-page", status: 404, signedIn: true, ready: "[data-testid=not-found]" },
];

describe("the dashboard's pages", () => {
  it("each carry the Content-Security-Policy, X-Frame-Options, nosniff and Referrer-Policy", async () => {
    const websocket = suite.pulse.url.replace(/^http/, "ws");
    for (const { path, status, signedIn } of pages()) {
      const res = await fetch(`${suite.pulse.url}${path}`, {
        redirect: "manual",
        headers: signedIn ? { cookie: `pulse_session=${encodeURIComponent(token)}` } : {},
      });
      await res.arrayBuffer();
      expect(res.status, path).toBe(status);
      const policy = res.headers.get("content-security-policy") ?? "";
      expect(policy, path).toContain("frame-ancestors 'none'");
      expect(policy, path).toContain("script-src 'self' 'unsafe-inline'");
      expect(policy, path).not.toContain("unsafe-eval");
      expect(policy, path).toContain(`connect-src 'self' ${websocket}`);
      expect(policy, path).toContain("object-src 'none'");
      expect(res.headers.get("x-frame-options"), path).toBe("DENY");
      expect(res.headers.get("x-content-type-options"), path).toBe("nosniff");
      expect(res.headers.get("referrer-policy"), path).toBe("strict-origin-when-cross-origin");
      // COOKIE_SECURE is off: no HSTS over plain HTTP.
      expect(res.headers.get("strict-transport-security"), path).toBeNull();
    }
  });

  it(
    "work under that policy in Chromium: scripts run, the WebSocket connects, nothing is refused",
    { timeout: 300_000 },
    async () => {
      const refusals: string[] = [];
      const pageAs = async (signedIn: boolean) => {
        const context = await suite.browser.newContext();
        if (signedIn)
          await context.addCookies([
            { name: "pulse_session", value: token, url: suite.pulse.url, httpOnly: true, sameSite: "Lax" },
          ]);
        await context.addInitScript(() => {
          const w = window as unknown as { __violations: string[] };
          w.__violations = [];
          document.addEventListener("securitypolicyviolation", (e) =>
            w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`),
          );
        });
        const page = await context.newPage();
        page.on("console", (message: ConsoleMessage) => {
          if (/Content Security Policy/i.test(message.text())) refusals.push(message.text());
        });
        return page;
      };
      const member = await pageAs(true);
      const visitor = await pageAs(false);
      try {
        for (const { path, ready, signedIn } of pages()) {
          const page = signedIn ? member : visitor;
          await page.goto(`${suite.pulse.url}${path}`);
          await page.locator(ready).first().waitFor({ timeout: 60_000 });
          const violations = await page.evaluate(() =>
            (window as unknown as { __violations: string[] }).__violations.slice(),
          );
          expect(violations, path).toEqual([]);
        }
        expect(refusals).toEqual([]);
      } finally {
        await member.context().close();
        await visitor.context().close();
      }
    },
  );

  it("cannot be framed by another page (clickjacking)", async () => {
    const context = await suite.browser.newContext();
    await context.addCookies([
      { name: "pulse_session", value: token, url: suite.pulse.url, httpOnly: true, sameSite: "Lax" },
    ]);
    const page = await context.newPage();
    try {
      const refused = page.waitForEvent("console", {
        predicate: (m) => /frame-ancestors/.test(m.text()),
        timeout: 60_000,
      });
      await page.setContent(`<iframe src="${suite.pulse.url}/runs/${runId}" width="800" height="600"></iframe>`);
      expect((await refused).text()).toContain("frame-ancestors 'none'");
      const frame = page.frames().find((f) => f !== page.mainFrame());
      expect(await frame?.locator("[data-testid=run-detail]").count()).toBe(0);
    } finally {
      await context.close();
    }
  });
});
