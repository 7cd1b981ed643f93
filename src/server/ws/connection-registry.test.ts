import { describe, expect, it } from "vitest";
import type { Principal } from "../auth/auth-service";
import { resolveServerSecurity } from "../http/server-security";
import { createLogger } from "../logger";
import { ConnectionGuard } from "./connection-guard";
import { ConnectionRegistry } from "./connection-registry";

const LIMITS = {
  ...resolveServerSecurity().ws,
  pingMs: 1e9,
  perUser: 1e6,
  perTenant: 1e6,
  perIp: 1e6,
  perProcess: 1e6,
};
const INTERVAL_MS = 60_000;

/** A registry on a hand-driven clock holding `count` signed-in connections (a session each), and every safety-check read it makes. */
function registryOf(count: number) {
  const clock = { now: 1_000_000 };
  const reads: string[][] = [];
  const registry = new ConnectionRegistry({
    auth: {
      // The database's answer: every session is still valid; what matters here is what is asked.
      stillActive: async ({ sessionIds, shareIds }) => {
        reads.push(sessionIds);
        return { sessions: new Set(sessionIds), shares: new Set(shareIds) };
      },
    },
    caps: LIMITS,
    checkIntervalMs: INTERVAL_MS,
    logger: createLogger("silent"),
  });
  /** Opens and admits connection `i`: session `s<i>` of user `u<i mod 10>`. */
  const signIn = (i: number): ConnectionGuard => {
    const socket = { send() {}, close() {}, terminate() {}, readyState: 1 };
    const guard = new ConnectionGuard(socket, "10.0.0.1", LIMITS, () => clock.now);
    const principal: Principal = {
      kind: "user",
      session: { tenantId: "t", userId: `u${i % 10}`, email: "u@example.com", sessionId: `s${i}`, access: "write" },
      expiresAt: clock.now + 3_600_000,
      endsAt: clock.now + 3_600_000,
    };
    registry.open(guard);
    expect(registry.admit(guard, principal)).toBeNull();
    return guard;
  };
  const guards = Array.from({ length: count }, (_, i) => signIn(i));
  // The first sweep starts the safety check's round.
  registry.sweep(clock.now);
  return { clock, reads, registry, guards, signIn };
}

/** Sweeps once a second for `seconds`, letting each safety-check read answer. */
async function sweepFor(registry: ConnectionRegistry, clock: { now: number }, seconds: number): Promise<void> {
  for (let s = 0; s < seconds; s++) {
    clock.now += 1_000;
    registry.sweep(clock.now);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("ConnectionRegistry's safety check", () => {
  it("reads 2,500 connections' sessions once per interval, in three spaced reads of at most a thousand", async () => {
    const { clock, reads, registry } = registryOf(2_500);
    await sweepFor(registry, clock, 60);
    // Slices of a rolling round: the third reaches the first connections again.
    expect(reads.map((ids) => ids.length)).toEqual([834, 834, 834]);
    expect(new Set(reads.flat()).size).toBe(2_500);
    // The next round starts over, at the same pace.
    await sweepFor(registry, clock, 20);
    expect(reads).toHaveLength(4);
  });

  it("reads nothing for idle connections within the interval", async () => {
    const { clock, reads, registry } = registryOf(200);
    await sweepFor(registry, clock, 59);
    expect(reads).toEqual([]);
    await sweepFor(registry, clock, 1);
    expect(reads.map((ids) => ids.length)).toEqual([200]);
  });
});

describe("ConnectionRegistry.revoke", () => {
  it("ends exactly the connections of the session or user it names", () => {
    const { registry, guards } = registryOf(30);
    registry.revoke({ kind: "session", id: "s3" });
    expect(guards.filter((g) => g.hasEnded)).toEqual([guards[3]]);
    registry.revoke({ kind: "user", id: "u5" });
    expect(guards.filter((g) => g.hasEnded)).toEqual([guards[3], guards[5], guards[15], guards[25]]);
    registry.revoke({ kind: "share", id: "s7" });
    expect(guards.filter((g) => g.hasEnded)).toHaveLength(4);
  });

  it("also ends a connection admitted just after the revocation of its session arrived (its token verified just before)", () => {
    const { registry, signIn } = registryOf(0);
    registry.revoke({ kind: "session", id: "s1" });
    registry.revoke({ kind: "user", id: "u2" });
    expect([signIn(1), signIn(2), signIn(3)].map((g) => g.hasEnded)).toEqual([true, true, false]);
  });
});
