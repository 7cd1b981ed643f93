import { randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import { queuePrefix } from "./agents/queue";
import { afterEach, describe, expect, inject, it } from "vitest";
import { SETUP_CHAIN } from "./agents/demo";
import { loadAuthSecret, DEMO_USER, seedDemo, startPendingSetups } from "./bootstrap";
import { openDatabase, type PrismaClient } from "./db";
import { createLogger } from "./logger";
import { connectRedis } from "./redis";
import { CapturedLog } from "../test/captured-log";
import { createTestPostgres, startTestPulse, type TestPulse } from "../test/harness";

const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

/** What seeding left in the database: demo users and tenants, and every run with its chain. */
async function seeded(db: PrismaClient) {
  return {
    users: await db.user.count({ where: { email: DEMO_USER.email } }),
    tenants: await db.tenant.count(),
    runs: await db.agentRun.findMany({ select: { agentRole: true, chainId: true, tenantId: true } }),
    contextFiles: await db.contextFile.count({ where: { status: "pending" } }),
  };
}

/** Jobs waiting in the first setup role's queue under this prefix. */
async function setupJobs(prefix: string): Promise<number> {
  const queue = new Queue(SETUP_CHAIN[0], {
    connection: connectRedis(inject("redisUrl"), `${prefix}:count`),
    prefix: queuePrefix(prefix, SETUP_CHAIN[0]),
  });
  try {
    return await queue.count();
  } finally {
    await queue.close();
  }
}

const ROUNDS = 10;
const INSTANCES = 4;

describe.skipIf(!inject("databaseUrl"))("Pulse instances starting at once on one fresh database and one Redis", () => {
  it(`seed exactly one demo tenant and start exactly one setup chain (${INSTANCES} instances, ${ROUNDS} rounds)`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const { url, drop } = await createTestPostgres();
      closing.push(drop);
      const prefix = `test-${randomUUID().slice(0, 8)}`;
      const log = new CapturedLog();
      // Each instance as `npm start` boots: its own pool migrating the database, its own
      // Pulse, then the start-up writes; all four at once.
      const instances = await Promise.all(
        Array.from({ length: INSTANCES }, async (_, i): Promise<TestPulse> => {
          const database = await openDatabase({ databaseUrl: url, pgliteDir: "" });
          closing.push(() => database.close());
          const logger = createLogger("info", `instance-${i}`, log);
          const app = await startTestPulse({ database, prefix, runWorkers: false, logger });
          closing.push(() => app.close());
          await seedDemo(app.pulse, logger);
          await startPendingSetups(app.pulse, logger);
          return app;
        }),
      );
      const state = await seeded(instances[0]!.pulse.services.db);
      expect({ round, ...state, runs: state.runs.length }).toEqual({
        round,
        users: 1,
        tenants: 1,
        runs: 1,
        contextFiles: 1,
      });
      expect(state.runs[0]).toMatchObject({ agentRole: SETUP_CHAIN[0], chainId: expect.any(String) });
      expect(await setupJobs(prefix)).toBe(1);
      expect(log.errors()).toEqual([]);
      expect(log.lines.filter((l) => l.msg === "created the demo tenant")).toHaveLength(1);
      expect(log.lines.filter((l) => l.msg === "started the tenant's setup chain")).toHaveLength(1);
      for (const close of closing.splice(0).reverse()) await close();
    }
  }, 600_000);
});

describe("demo seeding cut short", () => {
  it("after creating the tenant and user but before queueing the chain, is completed by the next start, once", async () => {
    const app = await startTestPulse({ runWorkers: false });
    closing.push(() => app.close());
    const logger = createLogger("silent");
    // The first start died here: the account exists, its chain was never queued.
    const { tenantId } = await app.pulse.services.auth.ensureAccount(DEMO_USER);
    expect(await app.pulse.services.runs.tenantsAwaitingSetup()).toEqual([tenantId]);

    for (let start = 0; start < 2; start++) {
      await seedDemo(app.pulse, logger);
      await startPendingSetups(app.pulse, logger);
    }
    const state = await seeded(app.pulse.services.db);
    expect(state.runs).toEqual([{ agentRole: SETUP_CHAIN[0], chainId: expect.any(String), tenantId }]);
    expect(await setupJobs(app.prefix)).toBe(1);
    expect(await app.pulse.services.runs.tenantsAwaitingSetup()).toEqual([]);
  });
});

describe("a deployment without a setup chain", () => {
  it("starts no setup at start-up and does not look for tenants awaiting one", async () => {
    const app = await startTestPulse({ runWorkers: false, setupChain: null });
    closing.push(() => app.close());
    const { runs } = app.pulse.services;
    await app.pulse.services.auth.ensureAccount(DEMO_USER);
    let looked = 0;
    const awaiting = runs.tenantsAwaitingSetup.bind(runs);
    runs.tenantsAwaitingSetup = () => (looked++, awaiting());
    await startPendingSetups(app.pulse, createLogger("silent"));
    expect(looked).toBe(0);
    expect((await seeded(app.pulse.services.db)).runs).toEqual([]);
  });
});

describe("the generated session signing key", () => {
  async function dataDir() {
    const dir = await mkdtemp(path.join(tmpdir(), "pulse-secret-"));
    closing.push(() => rm(dir, { recursive: true, force: true }));
    return path.join(dir, ".data");
  }

  it("is one key for every process sharing .data that starts at once, and the same on the next start", async () => {
    const dir = await dataDir();
    const logger = createLogger("silent");
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadAuthSecret({}, dir, logger)));
    const decoded = new Set(keys.map((k) => new TextDecoder().decode(k)));
    expect(decoded.size).toBe(1);
    const [key] = decoded;
    expect(key!.length).toBeGreaterThanOrEqual(32);
    expect(await readFile(path.join(dir, "auth-secret"), "utf8")).toBe(key);
    expect(await readdir(dir)).toEqual(["auth-secret"]);
    expect(new TextDecoder().decode(await loadAuthSecret({}, dir, logger))).toBe(key);
  });

  it("is refused, with what to do, when the file holds no usable key", async () => {
    const dir = await dataDir();
    await loadAuthSecret({}, dir, createLogger("silent"));
    await writeFile(path.join(dir, "auth-secret"), "short");
    await expect(loadAuthSecret({}, dir, createLogger("silent"))).rejects.toThrow(
      /delete it to have one generated, or set AUTH_SECRET/,
    );
  });
});
