import { describe, expect, it } from "vitest";
import { parseEntries } from "../events/event-stream";
import { pulseFrameEncoder } from "./frame-encoder";

const event = { type: "agent:progress", tenantId: "t", runId: "r", jobId: "r", queue: "q", agentRole: "q", attempt: 1, progress: 40, phase: "running", message: "reading \"quotes\" and ünïcode", seq: 0, at: "2026-01-01T00:00:00.000Z" };

describe("pulseFrameEncoder", () => {
  it("writes a tracked event from a stream entry around the entry's own JSON, frame for frame what JSON.stringify writes", () => {
    const [entry] = parseEntries([["1700000000000-3", ["e", JSON.stringify(event)]]]);
    for (const id of [7, "sub-1", null]) {
      const message = { id, result: { type: "data", data: { id: entry!.id, data: entry!.event }, id: entry!.id } };
      const frame = pulseFrameEncoder.encode(message) as string;
      expect(JSON.parse(frame)).toEqual(JSON.parse(JSON.stringify(message)));
    }
  });

  it("stringifies everything else, including events that did not come from a stream entry", () => {
    const copy = { ...event };
    const messages = [
      { id: 1, result: { type: "data", data: { id: "1-0", data: copy }, id: "1-0" } },
      { id: 2, result: { type: "started" } },
      { id: 3, error: { message: "nope", code: -32600 } },
      { id: null, method: "reconnect" },
    ];
    for (const message of messages) expect(pulseFrameEncoder.encode(message)).toBe(JSON.stringify(message));
  });

  it("decodes text frames and refuses binary ones", () => {
    expect(pulseFrameEncoder.decode('{"id":1,"method":"subscription.stop"}')).toEqual({ id: 1, method: "subscription.stop" });
    expect(() => pulseFrameEncoder.decode(new Uint8Array([1, 2]))).toThrow(/text frame/);
  });
});
