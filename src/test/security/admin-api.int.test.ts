import { TRPCClientError } from "@trpc/client";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AgentRemote,
  collect,
  connectClient,
  registerTenant,
  startTestPulse,
  type TestClient,
  type TestPulse,
} from "../harness";

/**
 * The admin API a product's backend calls: tenants and users by the product's own ids,
 * tokens minted for them with the access they were given and nothing more, and
 * registration as an option.
 */

const ADMIN_KEY = "admin-key-that-is-long-enough-for-the-rule-0123";
const ticker = new AgentRemote("summarizer");
let app: TestPulse;
let closed: TestPulse;
const clients: TestClient[] = [];

beforeAll(async () => {
  app = await startTestPulse({ agents: [ticker.definition], admin: { key: ADMIN_KEY } });
  closed = await startTestPulse({ runWorkers: false, database: app.database, auth: { registration: false } });
});
beforeEach(() => ticker.reset());
afterEach(async () => {
  ticker.finish();
  await Promise.all(clients.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await closed?.close();
  await app?.close();
});

async function admin(method: string, path: string, body?: unknown, key = ADMIN_KEY, target = app) {
  const res = await fetch(`${target.baseUrl}/api/admin/${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function mint(
  body: Record<string, unknown>,
): Promise<{ token: string; tenantId: string; userId: string; scope: string }> {
  const answer = await admin("POST", "tokens", body);
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  return answer.body;
}

function client(token: string): TestClient {
  const c = connectClient(app, token);
  clients.push(c);
  return c;
}

const codeOf = (error: unknown) =>
  error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code : String(error);

describe("the admin API", () => {
  it("answers 404 without PULSE_ADMIN_KEY and 401 to a wrong key", async () => {
    expect((await admin("POST", "tokens", {}, ADMIN_KEY, closed)).status).toBe(404);
    const wrong = await admin("POST", "tokens", {}, `${ADMIN_KEY}x`);
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("UNAUTHORIZED");
  });

  it("upserts a tenant and several users by the product's ids, the same rows each time", async () => {
    const tenant = await admin("PUT", "tenants/acme-1", { name: "Acme" });
    expect(tenant.status).toBe(200);
    const alice = await admin("PUT", "tenants/acme-1/users/alice", { email: "alice@acme.example" });
    const bob = await admin("PUT", "tenants/acme-1/users/bob", {});
    expect(alice.body.tenantId).toBe(tenant.body.tenantId);
    expect(bob.body.tenantId).toBe(tenant.body.tenantId);
    expect(bob.body.userId).not.toBe(alice.body.userId);
    const again = await admin("PUT", "tenants/acme-1/users/alice", {});
    expect(again.body.userId).toBe(alice.body.userId);
    expect(again.body.email).toBe("alice@acme.example");
    const renamed = await admin("PUT", "tenants/acme-1", { name: "Acme Inc" });
    expect(renamed.body).toMatchObject({ tenantId: tenant.body.tenantId, name: "Acme Inc" });
    expect(await app.pulse.services.db.user.count({ where: { tenantId: tenant.body.tenantId } })).toBe(2);
    // A product's tenant starts no setup chain of its own, now or at the next start.
    expect(await app.pulse.services.runs.tenantsAwaitingSetup()).not.toContain(tenant.body.tenantId);
  });

  it("refuses a body with a bad field, naming it", async () => {
    const answer = await admin("POST", "tokens", { tenant: { id: "t" }, user: { id: "u" }, access: "admin" });
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toContain("access");
    const ttl = await admin("POST", "tokens", { tenant: { id: "t" }, user: { id: "u" }, ttlSeconds: 10 });
    expect(ttl.status).toBe(400);
    expect(ttl.body.error.message).toContain("ttlSeconds");
  });
});

describe("a minted token", () => {
  it("with read access watches and reads the tenant, and gets FORBIDDEN on every change", async () => {
    const writer = await mint({ tenant: { id: "globex" }, user: { id: "ops" }, access: "write" });
    const reader = await mint({ tenant: { id: "globex" }, user: { id: "viewer" } });
    expect(reader.tenantId).toBe(writer.tenantId);
    const { runId } = await client(writer.token).trpc.agent.run.mutate({ agentRole: ticker.role });
    const watching = client(reader.token);
    const seen = collect((h) => watching.trpc.agent.onStatus.subscribe({ runId }, h));
    await expect.poll(() => seen.items.length).toBeGreaterThan(0);
    ticker.tick(1);
    await expect.poll(() => seen.events().some((i) => i.data.type === "agent:progress")).toBe(true);
    expect((await watching.trpc.agent.get.query({ runId })).id).toBe(runId);
    for (const change of [
      () => watching.trpc.agent.run.mutate({ agentRole: ticker.role }),
      () => watching.trpc.agent.cancel.mutate({ runId }),
      () => watching.trpc.context.approve.mutate({ version: 1 }),
      () => watching.trpc.share.create.mutate({ runId }),
    ]) {
      expect(codeOf(await change().catch((e: unknown) => e))).toBe("FORBIDDEN");
    }
    // The socket token a read-only session fetches is read-only too.
    const { token: socketToken } = await watching.trpc.auth.socketToken.query();
    const socketPrincipal = await app.pulse.services.auth.authenticate(socketToken, ["socket"]);
    expect(socketPrincipal?.kind === "user" && socketPrincipal.session.access).toBe("read");
    await client(writer.token).trpc.agent.cancel.mutate({ runId });
    seen.unsubscribe();
  });

  it("scoped to one run watches that run only", async () => {
    const writer = await mint({ tenant: { id: "initech" }, user: { id: "ops" }, access: "write" });
    const { runId } = await client(writer.token).trpc.agent.run.mutate({ agentRole: ticker.role });
    const scoped = await mint({ tenant: { id: "initech" }, user: { id: "customer" }, runId });
    expect(scoped.scope).toBe("run");
    const viewer = client(scoped.token);
    expect((await viewer.trpc.share.run.query()).id).toBe(runId);
    expect(codeOf(await viewer.trpc.agent.list.query().catch((e: unknown) => e))).toBe("UNAUTHORIZED");
    // Another tenant's run cannot be named.
    expect((await admin("POST", "tokens", { tenant: { id: "umbrella" }, user: { id: "x" }, runId })).status).toBe(404);
  });
});

describe("registration", () => {
  it("is FORBIDDEN with PULSE_REGISTRATION=false, and starts no setup chain where its agents are not deployed", async () => {
    expect(codeOf(await registerTenant(closed).catch((e: unknown) => e))).toBe("FORBIDDEN");
    const tenant = await registerTenant(app);
    expect(await app.pulse.services.db.agentRun.count({ where: { tenantId: tenant.tenantId } })).toBe(0);
  });
});
