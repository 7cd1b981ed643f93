import { randomUUID } from "node:crypto";
import type { PulseServices } from "../../src/server/pulse";
import { BENCH_ROLES, type BenchTenant } from "../workload";

export interface TenantSpec {
  /** Distinguishes this scenario's tenants from every other's. */
  label: string;
  tenants: number;
  connectionsPerTenant: number;
  runsPerTenant: number;
}

/** Runs `task` over `items` with at most `limit` at once. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await task(items[index]!, index);
      }
    }),
  );
}

/**
 * Creates a scenario's tenants in Pulse's database: a tenant with one user (through
 * Prisma: no password hashing, nobody signs in), a session and its token per subscriber
 * connection (through `AuthService`, as signing in would), and runs that are active in
 * attempt 1, as if a worker had picked them up; then analyzes the tables it filled.
 */
export async function createBenchTenants(services: PulseServices, spec: TenantSpec): Promise<BenchTenant[]> {
  const { db, auth } = services;
  const tenants: BenchTenant[] = Array.from({ length: spec.tenants }, () => ({ tenantId: "", runs: [], tokens: [] }));
  await eachLimited(tenants, 8, async (tenant, index) => {
    const email = `${spec.label}-${index}-${randomUUID().slice(0, 8)}@bench.test`;
    const created = await db.tenant.create({
      data: { name: `Bench ${spec.label} ${index}`, users: { create: { email, passwordHash: "bench: no sign-in" } } },
      include: { users: true },
    });
    const user = created.users[0]!;
    tenant.tenantId = created.id;
    for (let r = 0; r < spec.runsPerTenant; r++) {
      const role = BENCH_ROLES[r % BENCH_ROLES.length]!;
      const run = await db.agentRun.create({
        data: {
          tenantId: created.id,
          agentRole: role,
          queue: role,
          jobId: randomUUID(),
          status: "active",
          phase: "running",
          attempt: 1,
          startedAt: new Date(),
        },
      });
      tenant.runs.push({
        tenantId: created.id,
        runId: run.id,
        jobId: run.jobId,
        queue: run.queue,
        agentRole: run.agentRole,
      });
    }
    tenant.tokens = new Array<string>(spec.connectionsPerTenant);
    await eachLimited(tenant.tokens, 4, async (_, c) => {
      const session = await auth.openSession({ userId: user.id, tenantId: created.id, email });
      tenant.tokens[c] = await auth.issueSessionToken(session);
    });
  });
  // A database in service has statistics for its tables (autovacuum analyzes one once a
  // tenth of its rows changed); these were filled a moment ago, thousands of rows at once,
  // and until analyzed the planner reads every session to look up a few hundred.
  await db.$executeRawUnsafe(`ANALYZE "Tenant", "User", "Session", "AgentRun"`);
  return tenants;
}
