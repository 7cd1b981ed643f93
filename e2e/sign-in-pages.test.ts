import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { PulseProcess } from "./support/pulse-process";

/**
 * The sign-in and registration pages offer only what the deployment has: a registration
 * form where registration is open, the demo account's sign-in where the demo account exists.
 * Read as `npm start` serves them, in their server-rendered HTML (nothing here needs scripts).
 */

const page = async (pulse: PulseProcess, path: string) => {
  const res = await fetch(`${pulse.url}${path}`, { redirect: "manual" });
  return { status: res.status, html: await res.text() };
};

describe("a Pulse embedded in a product (registration closed, no demo account)", () => {
  let pulse: PulseProcess;
  beforeAll(async () => {
    pulse = await new PulseProcess({
      REDIS_URL: inject("redisUrl"),
      PULSE_DEMO: "false",
      PULSE_REGISTRATION: "false",
    }).start();
  }, 180_000);
  afterAll(async () => {
    await pulse?.stop();
  });

  it("says registration is closed instead of showing a form that can only fail", async () => {
    const { status, html } = await page(pulse, "/register");
    expect(status).toBe(200);
    expect(html).toContain("Registration is closed");
    expect(html).not.toContain("<form");
    expect(html).toContain('href="/login"');
  });

  it("offers neither registration nor a demo sign-in on the sign-in page", async () => {
    const { status, html } = await page(pulse, "/login");
    expect(status).toBe(200);
    expect(html).toContain("<form");
    expect(html).not.toContain('href="/register"');
    expect(html).not.toContain("demo@pulse.local");
    expect(html).toContain("Ask the administrator of this Pulse");
  });
});

describe("the default install (registration open, demo account)", () => {
  let pulse: PulseProcess;
  beforeAll(async () => {
    pulse = await new PulseProcess({ REDIS_URL: inject("redisUrl"), PULSE_DEMO_ACCOUNT: "true" }).start();
  }, 180_000);
  afterAll(async () => {
    await pulse?.stop();
  });

  it("shows the registration form and, on the sign-in page, the demo account and the way to register", async () => {
    const register = await page(pulse, "/register");
    expect(register.html).toContain("<form");
    expect(register.html).not.toContain("Registration is closed");
    const login = await page(pulse, "/login");
    expect(login.html).toContain('href="/register"');
    expect(login.html).toContain("demo@pulse.local");
  });
});
