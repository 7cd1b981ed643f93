import { describe, expect, it } from "vitest";
import { parseEntries } from "../events/event-stream";
import { requestPrefix, trackedDataFrame } from "./frame-encoder";

const event = {
  type: "agent:progress",
  tenantId: "t",
  runId: "r",
  jobId: "r",
  queue: "q",
  agentRole: "q",
  attempt: 1,
  progress: 40,
  phase: "running",
  message: 'reading "quotes" and ünïcode',
  seq: 0,
  at: "2026-01-01T00:00:00.000Z",
};

/** The message tRPC's own handler sends for a tracked item, built as it builds it (conformance.int.test.ts compares with the handler itself). */
const trpcFrame = (id: string | number | null, jsonrpc: string | undefined, trackedId: string, data: unknown) =>
  JSON.stringify({
    id,
    ...(jsonrpc === undefined ? {} : { jsonrpc }),
    result: { type: "data", data: { id: trackedId, data }, id: trackedId },
  });

describe("trackedDataFrame", () => {
  it("writes an item from a stream entry around the entry's own JSON, byte for byte what tRPC's handler sends", () => {
    const [entry] = parseEntries([["1700000000000-3", ["e", JSON.stringify(event)]]]);
    for (const [id, jsonrpc] of [
      [7, undefined],
      ["sub-1", undefined],
      [null, undefined],
      [3, "2.0"],
    ] as const) {
      expect(trackedDataFrame(requestPrefix(id, jsonrpc), entry!.id, entry!.event)).toBe(
        trpcFrame(id, jsonrpc, entry!.id, entry!.event),
      );
    }
  });

  it("serialises anything else, snapshots and events that did not come from a stream entry, the same way", () => {
    const snapshot = { runs: [{ id: "r", output: 'ünïcode "quoted"\n', outputStart: 0 }] };
    const items = [
      { ...event },
      { type: "snapshot", snapshot: { runs: [] } },
      { type: "snapshot", snapshot },
      { type: "resync", snapshot },
      { snapshot, type: "snapshot" },
      { type: "snapshot", snapshot, extra: 1 },
    ];
    for (const item of items) {
      expect(trackedDataFrame(requestPrefix(1, undefined), "1-0", item)).toBe(trpcFrame(1, undefined, "1-0", item));
    }
  });
});
