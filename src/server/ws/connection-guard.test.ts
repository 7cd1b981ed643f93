import { describe, expect, it } from "vitest";
import type { Principal } from "../auth/auth-service";
import {
  ConnectionGuard,
  REJECTIONS_BEFORE_CLOSE,
  type ConnectionLimits,
  type GuardedSocket,
} from "./connection-guard";
import { SubscriptionWire } from "./subscription-wire";

const LIMITS: ConnectionLimits = {
  authTimeoutMs: 5_000,
  maxSubscriptions: 2,
  messagesPerSecond: 50,
  maxBatch: 8,
  maxRequestIdLength: 64,
  tokenGraceMs: 10_000,
  tokenRefreshLeadMs: 30_000,
  maxBufferedBytes: 1024 * 1024,
  pingMs: 1_000,
  pongWaitMs: 500,
};

class FakeSocket implements GuardedSocket {
  readyState = 1;
  readonly sent: string[] = [];
  terminated = false;
  closedWith: number | null = null;
  send(data: string | Buffer): void {
    this.sent.push(data.toString());
  }
  close(code: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
  }
}

function guardAt(clock: { now: number }, sessionEndsInMs = 7_200_000) {
  const socket = new FakeSocket();
  const guard = new ConnectionGuard(socket, "10.0.0.1", LIMITS, () => clock.now);
  const principal: Principal = {
    kind: "user",
    session: { tenantId: "t", userId: "u", email: "u@example.com", sessionId: "s", access: "write" },
    expiresAt: clock.now + 3_600_000,
    endsAt: clock.now + sessionEndsInMs,
  };
  guard.authenticated(principal);
  return { socket, guard };
}

describe("ConnectionGuard keep-alive", () => {
  it("pings a connection quiet for pingMs and drops it when no answer comes within pongWaitMs", () => {
    const clock = { now: 0 };
    const { socket, guard } = guardAt(clock);
    guard.tick((clock.now = 900));
    expect(socket.sent).toEqual([]);
    guard.tick((clock.now = 1_000));
    expect(socket.sent).toEqual(["PING"]);
    guard.tick((clock.now = 1_400));
    expect(socket.terminated).toBe(false);
    guard.tick((clock.now = 1_500));
    expect(socket.terminated).toBe(true);
    expect(socket.sent).toEqual(["PING"]);
  });

  it("counts any frame from the client as an answer, so a connection that answers is never dropped", () => {
    const clock = { now: 0 };
    const { socket, guard } = guardAt(clock);
    for (let round = 0; round < 5; round++) {
      guard.tick((clock.now += 1_000));
      expect(socket.sent.at(-1)).toBe("PING");
      expect(guard.received()).toBe(true);
      guard.tick((clock.now += 400));
    }
    // A request is as good as a PONG: the quiet period starts again from it.
    guard.received();
    const refused: unknown[] = [];
    expect(
      guard.allows([{ id: 1, method: "query", params: { path: "agent.roles" } }], {
        sendRefusals: (ids) => refused.push(ids),
      }),
    ).toBe(true);
    expect(refused).toEqual([]);
    guard.tick((clock.now += 100));
    guard.tick((clock.now += 900));
    expect(socket.sent).toHaveLength(5);
    expect(socket.terminated).toBe(false);
  });
});

describe("ConnectionGuard unauthenticated timeout", () => {
  it("closes a connection with no valid token after authTimeoutMs, but waits while its token is being checked", async () => {
    const clock = { now: 0 };
    const socket = new FakeSocket();
    const guard = new ConnectionGuard(socket, "10.0.0.1", LIMITS, () => clock.now);
    // connectionParams arrived; the database is slow to answer for the session (a burst).
    let answer!: (principal: null) => void;
    const checked = guard.whileCheckingToken(() => new Promise<null>((resolve) => (answer = resolve)));
    guard.received();
    guard.tick((clock.now = LIMITS.authTimeoutMs + 1_000));
    expect(socket.closedWith).toBeNull();
    // The check ended without a principal: the timeout, long past, closes at the next sweep.
    answer(null);
    expect(await checked).toBeNull();
    guard.received();
    guard.tick((clock.now += 100));
    expect(socket.closedWith).toBe(4401);
  });

  it("stops waiting for a token check that failed (the database stayed away)", async () => {
    const clock = { now: 0 };
    const socket = new FakeSocket();
    const guard = new ConnectionGuard(socket, "10.0.0.1", LIMITS, () => clock.now);
    let fail!: (error: Error) => void;
    const checked = guard.whileCheckingToken(() => new Promise<null>((_, reject) => (fail = reject)));
    guard.tick((clock.now = LIMITS.authTimeoutMs + 1_000));
    expect(socket.closedWith).toBeNull();
    fail(new Error("database unavailable"));
    await expect(checked).rejects.toThrow("database unavailable");
    guard.tick((clock.now += 100));
    expect(socket.closedWith).toBe(4401);
  });
});

describe("ConnectionGuard session end", () => {
  it("ends the connection when its session expires, though its token is valid longer, without asking anyone", () => {
    const clock = { now: 0 };
    const { guard } = guardAt(clock, 60_000);
    guard.received();
    guard.tick((clock.now = 59_999));
    expect(guard.hasEnded).toBe(false);
    guard.received();
    guard.tick((clock.now = 60_000));
    expect(guard.hasEnded).toBe(true);
    expect(() => guard.assertUsable()).toThrow("your session has ended: sign in again");
  });
});

describe("ConnectionGuard subscriptions", () => {
  it("caps open subscriptions, and a session end closes every wire and makes calls fail with UNAUTHORIZED", () => {
    const clock = { now: 0 };
    const { socket, guard } = guardAt(clock);
    const open = (id: number) => {
      const wire = new SubscriptionWire(socket, id, undefined);
      guard.subscribe(wire);
      return wire;
    };
    const first = open(1);
    const second = open(2);
    expect(() => open(3)).toThrow(/at most 2 subscriptions/);
    expect(guard.subscription(2)).toBe(second);
    guard.unsubscribe(second);
    expect(guard.subscription(2)).toBeUndefined();
    const third = open(4);
    // One feed carries a wire's live events; a second feed of the same call yields its own.
    expect(third.claim()).toBe(true);
    expect(third.claim()).toBe(false);
    const stopped: string[] = [];
    first.onClose({ close: () => stopped.push("first") });
    third.onClose({ close: () => stopped.push("third") });
    guard.endSession("your session has ended: sign in again");
    expect(stopped).toEqual(["first", "third"]);
    expect(() => guard.assertUsable()).toThrow(expect.objectContaining({ code: "UNAUTHORIZED" }));
    // The socket closes once both subscriptions have sent their error.
    guard.unsubscribe(first);
    guard.unsubscribe(third);
    expect(socket.closedWith).toBe(null);
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        expect(socket.closedWith).toBe(4401);
        resolve();
      }, 80),
    );
  });
});

describe("ConnectionGuard message budget", () => {
  it("charges every frame, refused or not, and closes a flood of any kind (1008) after a bounded number of frames", () => {
    const oversized = Array.from({ length: LIMITS.maxBatch + 1 }, (_, i) => ({ id: i, method: "query" }));
    const kinds: [string, readonly unknown[]][] = [
      ["oversized batch", oversized],
      ["long id", [{ id: "x".repeat(LIMITS.maxRequestIdLength + 1), method: "query" }]],
      ["stop", [{ id: 1, method: "subscription.stop" }]],
      ["no request", []],
    ];
    for (const [kind, requests] of kinds) {
      const clock = { now: 0 };
      const { socket, guard } = guardAt(clock);
      let answers = 0;
      const answer = { sendRefusals: (ids: readonly unknown[]) => (answers += Math.max(1, ids.length)) };
      let frames = 0;
      // The clock stands still: no token comes back, so the count is exact.
      while (socket.closedWith === null && frames < 10_000) {
        frames += 1;
        if (!guard.received()) break;
        if (guard.charge()) guard.allows(requests, answer);
        else
          guard.refuseOverRate(
            requests.map((r) => (r as { id?: unknown }).id),
            answer,
          );
      }
      expect(socket.closedWith, kind).toBe(1008);
      expect(frames, kind).toBeLessThanOrEqual(LIMITS.messagesPerSecond * 2 + REJECTIONS_BEFORE_CLOSE);
      expect(answers, kind).toBeLessThanOrEqual(REJECTIONS_BEFORE_CLOSE);
    }
  });
});
