import { Encoder, PacketType } from "socket.io-parser";
import { describe, expect, test } from "vitest";
import { requestPrefix, trackedDataFrame } from "../src/server/ws/frame-encoder";
import { socketIoOffsetOf, trackedIdOf } from "./reconnect-storm";
import { StormLedger } from "./storm-ledger";
import { benchEvent } from "./workload";

/** Three clients over 2 tenants (0, 1, 0); events [10, 30) were published while they were away, live ones from 30. */
const RANGE = { missedStart: 10, liveStart: 30, tenants: 2 };
const missedOf = (tenant: number) => Array.from({ length: 20 }, (_, i) => 10 + i).filter((seq) => seq % 2 === tenant);

describe("StormLedger", () => {
  test("a client that got every missed event once and then a live one is back to live, from the reconnect", () => {
    const ledger = new StormLedger([0, 1, 0], RANGE, 1_000);
    for (const client of [0, 1, 2]) {
      const tenant = client % 2 === 1 ? 1 : 0;
      for (const seq of missedOf(tenant)) ledger.record(client, seq, 2_000);
      ledger.record(client, 30 + tenant, 1_000 + (client + 1) * 10_000);
    }
    const counts = ledger.counts();
    expect(counts).toMatchObject({ connections: 3, live: 3, lost: 0, duplicates: 0, foreign: 0, clientsWithLoss: 0 });
    expect(counts.backToLiveMs.max).toBeCloseTo(30, 0);
  });

  test("missed events never received are lost, per client; repeats are duplicates; another tenant's are foreign", () => {
    const ledger = new StormLedger([0, 1, 0], RANGE, 0);
    // Client 0 gets nothing it missed (a fresh connection), only a live event, twice.
    ledger.record(0, 30, 5_000);
    ledger.record(0, 30, 6_000);
    // Client 1 misses its tenant's last missed event (29) and gets one of tenant 0's.
    for (const seq of missedOf(1).slice(0, -1)) ledger.record(1, seq, 1_000);
    ledger.record(1, 12, 1_000);
    // Client 2 never comes back.
    expect(ledger.counts()).toMatchObject({
      live: 1,
      lost: 10 + 1 + 10,
      clientsWithLoss: 3,
      duplicates: 1,
      clientsWithDuplicates: 1,
      foreign: 1,
    });
    expect(ledger.counts().backToLiveMs.count).toBe(1);
  });

  test("events from before the drop are not the storm's", () => {
    const ledger = new StormLedger([0], { missedStart: 10, liveStart: 12, tenants: 1 }, 0);
    ledger.record(0, 9, 1_000);
    ledger.record(0, 9, 1_000);
    expect(ledger.counts()).toMatchObject({ lost: 2, duplicates: 0, foreign: 0, live: 0 });
  });
});

test("a storm client reads the tracked id back from the very frame Pulse's server writes", () => {
  const run = { tenantId: "t1", runId: "r1", jobId: "j1", queue: "q", agentRole: "client-researcher" };
  const frame = trackedDataFrame(requestPrefix(1, undefined), "1733400000000-7", benchEvent(3, run, 42));
  expect(trackedIdOf(Buffer.from(frame))).toBe("1733400000000-7");
  expect(trackedIdOf(Buffer.from('{"id":1,"result":{"type":"started"}}'))).toBeNull();
});

test("a storm client reads the offset back from the EVENT frame socket.io-parser encodes for a recovering server", () => {
  const run = { tenantId: "t1", runId: "r1", jobId: "j1", queue: "q", agentRole: "client-researcher" };
  const encode = (data: unknown[]) => new Encoder().encode({ type: PacketType.EVENT, nsp: "/", data })[0] as string;
  const event = benchEvent(3, run, 42);
  expect(socketIoOffsetOf(Buffer.from(encode([event.type, event, "1733400000000-7"])))).toBe("1733400000000-7");
  // Without connection-state recovery the event's object is the last argument: no offset.
  expect(socketIoOffsetOf(Buffer.from(encode([event.type, event])))).toBeNull();
});
