import type { Browser, BrowserContext, BrowserContextOptions } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { eventually } from "../../src/test/harness";
import { launchChromium } from "./browser";
import { OutsideAgent } from "./outside-agent";
import type { PulseProcess } from "./pulse-process";
import { newEmail, OUTSIDE_AGENT, PASSWORD, signedIn, startDashboardPulse } from "./tenant";

/** A tenant's API client over HTTP, as `PulseProcess.api` makes one. */
export type TenantApi = ReturnType<PulseProcess["api"]>;

/**
 * A browser test file's own Pulse and Chromium, and the tenants, sign-ins and outside runs its
 * tests make on them. One object owns both processes, so every file starts and closes them alike.
 */
export class DashboardSuite {
  private chromium?: Browser;
  private process?: PulseProcess;

  async open(start: () => Promise<PulseProcess>): Promise<void> {
    this.chromium = await launchChromium();
    this.process = await start();
  }

  async close(): Promise<void> {
    await this.chromium?.close();
    await this.process?.stop();
  }

  get browser(): Browser {
    if (!this.chromium) throw new Error("The browser starts in the suite's beforeAll: use it inside a test or hook.");
    return this.chromium;
  }

  get pulse(): PulseProcess {
    if (!this.process) throw new Error("Pulse starts in the suite's beforeAll: use it inside a test or hook.");
    return this.process;
  }

  /** A browser context signed in with a session token (see `signedIn`). */
  signedIn(token: string, options: BrowserContextOptions & { baseUrl?: string } = {}): Promise<BrowserContext> {
    return signedIn(this.browser, this.pulse, token, options);
  }

  /** A new tenant, registered just now (its setup chain has only started): its session and an API client for it. */
  async registeredTenant(who: string) {
    const tenant = await this.pulse
      .api()
      .auth.register.mutate({ email: newEmail(who), password: PASSWORD, tenantName: `${who} Co` });
    return { ...tenant, api: this.pulse.api(tenant.token) };
  }

  /** A new tenant whose setup chain has finished: its session token and an API client for it. */
  async settledTenant(who: string) {
    const tenant = await this.registeredTenant(who);
    await eventually(
      () => tenant.api.context.get.query(),
      (c) => c?.status === "completed",
      `${who}'s setup chain`,
      90_000,
    );
    return tenant;
  }

  /** A queued run of the outside agent's role, and the agent that reports it. */
  async outsideRun(api: TenantApi) {
    const { runId, reportToken } = await api.agent.run.mutate({ agentRole: OUTSIDE_AGENT });
    return { runId, agent: new OutsideAgent(this.pulse.url, runId, reportToken!) };
  }
}

/**
 * Starts Chromium and a Pulse (`start`, the dashboard's by default) before the file's tests, and
 * closes both after them. Call it at the top of a test file; hooks the file adds later run after
 * these start and before these close.
 */
export function dashboardSuite(start: () => Promise<PulseProcess> = startDashboardPulse): DashboardSuite {
  const suite = new DashboardSuite();
  beforeAll(() => suite.open(start));
  afterAll(() => suite.close());
  return suite;
}
