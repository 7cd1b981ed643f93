import { randomUUID } from "node:crypto";
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { SETUP_CHAIN } from "../agents/demo";
import { defineAgent } from "../agents/define-agent";
import { startPendingSetups } from "../bootstrap";
import { TRPC_PATH } from "../http-server";
import { createLogger } from "../logger";
import type { AppRouter } from "../trpc/root";
import { CapturedLog } from "../../test/captured-log";
import { startTestPulse, type TestPulse } from "../../test/harness";

const PASSWORD = "correct horse battery";
const opened: TestPulse[] = [];
afterAll(async () => {
  for (const app of opened.splice(0).reverse()) await app.close();
});

async function start(options: Parameters<typeof startTestPulse>[0] = {}) {
  const log = new CapturedLog();
  const app = await startTestPulse({ runWorkers: false, logger: createLogger("warn", "pulse", log), ...options });
  opened.push(app);
  return { app, log };
}

/** The Pulse most tests share; its log is cleared before each. */
let shared: Awaited<ReturnType<typeof start>>;
beforeAll(async () => {
  shared = await start();
});
beforeEach(() => {
  shared.log.text = "";
});

/** One HTTP request per call, as separate browsers would send them. */
const anonymous = (app: TestPulse) =>
  createTRPCClient<AppRouter>({ links: [httpLink({ url: `${app.baseUrl}${TRPC_PATH}` })] });

const codeOf = (error: unknown) =>
  error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code : String(error);

describe("registration", () => {
  it("with one email from several requests at once makes one account; the others are told CONFLICT, and nothing is logged as an error", async () => {
    const { app, log } = shared;
    const email = `race-${randomUUID().slice(0, 8)}@example.test`;
    const tenantName = `Race ${randomUUID().slice(0, 8)}`;
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => anonymous(app).auth.register.mutate({ email, password: PASSWORD, tenantName })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const refusals = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    expect(refusals.map(codeOf)).toEqual(["CONFLICT", "CONFLICT", "CONFLICT", "CONFLICT"]);
    expect(refusals[0].message).toMatch(/already exists/);
    const { db } = app.pulse.services;
    expect(await db.user.count({ where: { email } })).toBe(1);
    // The losers' transactions left no tenant behind.
    expect(await db.tenant.count({ where: { name: tenantName } })).toBe(1);
    expect(log.errors()).toEqual([]);
  });

  it.each([
    ["12345678", "password: must be at least 10 characters"],
    ["password", "password: must be at least 10 characters"],
    [" ".repeat(8), "password: must be at least 10 characters"],
    [" ".repeat(12), "password: must not be one character repeated"],
    ["Password123", "password: is one of the most common passwords; choose one that is harder to guess"],
  ])("with the password %j is BAD_REQUEST (%s) and creates nothing", async (password, message) => {
    const { app } = shared;
    const email = `weak-${randomUUID().slice(0, 8)}@example.test`;
    const refused = await anonymous(app)
      .auth.register.mutate({ email, password, tenantName: "Weak" })
      .catch((e: unknown) => e);
    expect(codeOf(refused)).toBe("BAD_REQUEST");
    expect((refused as Error).message).toBe(message);
    expect(await app.pulse.services.db.user.count({ where: { email } })).toBe(0);
    // The service holds the same line for callers that are not the API (demo seeding, tests).
    await expect(app.pulse.services.auth.register({ email, password, tenantName: "Weak" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message,
    });
  });

  it("with a lone surrogate in the company name never leaves a tenant without its setup chain", async () => {
    const { app } = shared;
    const email = `surrogate-${randomUUID().slice(0, 8)}@example.test`;
    const outcome = await anonymous(app)
      .auth.register.mutate({ email, password: PASSWORD, tenantName: "Acme \ud800 Co" })
      .then(
        () => "OK",
        (e: unknown) => codeOf(e),
      );
    expect(outcome).not.toBe("INTERNAL_SERVER_ERROR");
    const user = await app.pulse.services.db.user.findUnique({ where: { email } });
    // Refused as bad input, it created nothing; accepted, its setup chain started.
    if (outcome === "OK")
      expect(await app.pulse.services.db.agentRun.count({ where: { tenantId: user!.tenantId } })).toBe(1);
    else expect(user).toBeNull();
    expect(await app.pulse.services.runs.tenantsAwaitingSetup()).toEqual([]);
  });

  it("where the setup agents are not deployed signs in without a chain, and the next start of a Pulse with them starts it, once", async () => {
    // A Pulse without the setup agents registers tenants without starting anything.
    const { app, log } = await start({
      database: shared.app.database,
      agents: [defineAgent({ role: "not-setup", run: async () => {} })],
    });
    const email = `later-${randomUUID().slice(0, 8)}@example.test`;
    const registered = await anonymous(app).auth.register.mutate({ email, password: PASSWORD, tenantName: "Later Co" });
    const { tenantId } = registered.user;
    const { db } = app.pulse.services;
    expect(await db.agentRun.count({ where: { tenantId } })).toBe(0);
    expect(log.errors()).toEqual([]);

    // The next start: a Pulse with the setup agents, on the same database.
    for (let startUp = 0; startUp < 2; startUp++) await startPendingSetups(shared.app.pulse, createLogger("silent"));
    const runs = await db.agentRun.findMany({ where: { tenantId } });
    expect(runs).toMatchObject([{ agentRole: SETUP_CHAIN[0], input: { company: "Later Co" } }]);
    expect(runs[0]!.chainId).not.toBeNull();
    expect(await db.contextFile.findUnique({ where: { tenantId } })).toMatchObject({ status: "pending", version: 0 });
  });
});
