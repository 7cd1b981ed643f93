import { describe, expect, test } from "vitest";
import { DeliveryLedger } from "./delivery-ledger";
import { isProgressEvent, routeEvent } from "./workload";

/** Events [0, 40) over 2 tenants with 2 runs each: connection 0 subscribes to tenant 0, connection 1 to tenant 1. */
function ledger() {
  const l = new DeliveryLedger([0, 1]);
  l.begin(0, 40, 2, 2);
  return l;
}

const ofTenant = (tenant: number) => Array.from({ length: 40 }, (_, seq) => seq).filter((seq) => seq % 2 === tenant);

describe("DeliveryLedger", () => {
  test("counts every event of a subscriber's tenant once, and nothing else as delivered", () => {
    const l = ledger();
    for (const seq of ofTenant(0)) l.record(0, seq, 0, 1_000);
    for (const seq of ofTenant(1)) l.record(1, seq, 0, 2_000);
    expect(l.progress()).toMatchObject({
      expected: 40,
      delivered: 40,
      missing: 0,
      duplicates: 0,
      foreign: 0,
      superseded: 0,
    });
    const summary = l.end();
    expect(summary.latency.count).toBe(40);
    expect(summary.latency.max).toBeGreaterThanOrEqual(1.999);
  });

  test("keeps the steps' and logs' latency apart from the progress events'", () => {
    const l = ledger();
    // Steps and logs arrive after 9 ms, progress after 1 ms.
    for (const seq of ofTenant(0)) l.record(0, seq, 0, isProgressEvent(seq) ? 1_000 : 9_000);
    const summary = l.end();
    const stored = ofTenant(0).filter((seq) => !isProgressEvent(seq)).length;
    expect(stored).toBeGreaterThan(0);
    expect(summary.latency.count).toBe(20);
    expect(summary.storedLatency.count).toBe(stored);
    expect(summary.storedLatency.p50).toBeCloseTo(9, 1);
    expect(summary.progressLatency.count).toBe(20 - stored);
    expect(summary.progressLatency.max).toBeCloseTo(1, 1);
    expect(summary.latency.p50).toBeCloseTo(1, 1);
  });

  test("tells duplicates, another tenant's events and events outside the step apart from deliveries", () => {
    const l = ledger();
    l.record(0, 0, 0, 1);
    l.record(0, 0, 0, 1);
    l.record(0, 1, 0, 1);
    l.record(0, 40, 0, 1);
    expect(l.progress()).toMatchObject({ delivered: 1, duplicates: 1, foreign: 1, outsideStep: 1, missing: 39 });
  });

  test("a progress event skipped for a newer one of the same run is superseded; the run's newest progress must arrive", () => {
    // Tenant 0, run 0: events 0, 4, 8, 12, … (routeEvent with 2 tenants and 2 runs).
    const run0 = ofTenant(0).filter((seq) => routeEvent(seq, 2, 2).run === 0);
    expect(run0.slice(0, 3)).toEqual([0, 4, 8]);
    const progress = run0.filter(isProgressEvent);
    expect(progress.length).toBeGreaterThan(2);
    const skipped = progress.slice(0, -1);
    const l = ledger();
    for (const seq of ofTenant(0)) if (!skipped.includes(seq)) l.record(0, seq, 0, 1);
    expect(l.progress()).toMatchObject({ superseded: skipped.length, missing: 20 });

    const m = ledger();
    for (const seq of ofTenant(0)) if (seq !== progress.at(-1)) m.record(0, seq, 0, 1);
    expect(m.progress()).toMatchObject({ superseded: 0, missing: 21 });
  });

  test("a step or log event is never superseded", () => {
    const l = ledger();
    const lifecycle = ofTenant(0).filter((seq) => !isProgressEvent(seq));
    expect(lifecycle.length).toBeGreaterThan(0);
    for (const seq of ofTenant(0)) if (!lifecycle.includes(seq)) l.record(0, seq, 0, 1);
    expect(l.progress()).toMatchObject({ superseded: 0, missing: 20 + lifecycle.length });
  });

  test("counts deliveries later than the step's bound, and none without one", () => {
    const l = new DeliveryLedger([0, 1]);
    l.begin(0, 40, 2, 2, 5_000);
    for (const seq of ofTenant(0)) l.record(0, seq, 0, seq < 10 ? 5_001 : 5_000);
    expect(l.progress()).toMatchObject({ delivered: 20, late: 5 });
    const unbounded = ledger();
    for (const seq of ofTenant(0)) unbounded.record(0, seq, 0, 60_000_000);
    expect(unbounded.progress().late).toBe(0);
  });

  test("a step that ends early expects only the events sent before its end, each tenant its own", () => {
    const l = ledger();
    for (let seq = 0; seq < 15; seq++) l.record(seq % 2, seq, 0, 1);
    expect(l.progress()).toMatchObject({ expected: 40, missing: 25 });
    // Events 0..14 were sent: 8 to tenant 0, 7 to tenant 1.
    l.endAt(15);
    expect(l.progress()).toMatchObject({ expected: 15, delivered: 15, missing: 0 });
    expect(l.end().latency.count).toBe(15);
  });
});
