import { describe, expect, it } from "vitest";
import { parseEntries } from "../events/event-stream";
import { pulseFrameEncoder } from "./frame-encoder";
import { SubscriptionWire, type WireSocket } from "./subscription-wire";

const event = { type: "agent:progress", tenantId: "t", runId: "r", jobId: "r", queue: "q", agentRole: "q", attempt: 1, progress: 40, phase: "running", message: "ünïcode \"quoted\"", seq: 0, at: "2026-01-01T00:00:00.000Z" };
const [entry, next] = parseEntries([
  ["1700000000000-3", ["e", JSON.stringify(event)]],
  ["1700000000000-4", ["e", JSON.stringify({ ...event, progress: 50 })]],
]);

class RecordingSocket implements WireSocket {
  readyState = 1;
  readonly sent: { data: string | Buffer; binary: boolean | undefined; corked: boolean }[] = [];
  private inCork = false;
  send(data: string | Buffer, options?: { binary?: boolean }): void {
    this.sent.push({ data, binary: options?.binary, corked: this.inCork });
  }
  corked(write: () => void): void {
    this.inCork = true;
    write();
    this.inCork = false;
  }
}

const started = (id: unknown, jsonrpc?: string) => JSON.stringify({ id, jsonrpc, result: { type: "started" } });

describe("SubscriptionWire", () => {
  it("takes its request id from a started message and writes tracked events as tRPC's handler would, in text frames", () => {
    for (const [id, jsonrpc] of [[1, undefined], ["sub-7", undefined], [3, "2.0"]] as const) {
      const socket = new RecordingSocket();
      const wire = new SubscriptionWire(socket);
      expect(wire.ready).toBe(false);
      expect(wire.claim(started(id, jsonrpc))).toBe(true);
      expect(wire.ready).toBe(true);
      wire.send([entry!]);
      const expected = pulseFrameEncoder.encode({ id, jsonrpc, result: { type: "data", id: entry!.id, data: { id: entry!.id, data: entry!.event } } });
      expect(socket.sent).toHaveLength(1);
      expect(socket.sent[0]!.binary).toBe(false);
      expect(socket.sent[0]!.data.toString()).toBe(expected);
    }
  });

  it("stays unclaimed by any other first frame, and then writes nothing", () => {
    const frames = [
      JSON.stringify({ id: 1, result: { type: "data", data: 1 } }),
      JSON.stringify({ id: 1, error: { message: "no", code: -32600 } }),
      JSON.stringify({ id: null, result: { type: "started" } }),
      JSON.stringify({ id: 1, jsonrpc: 2, result: { type: "started" } }),
      "PING",
      Buffer.from(started(1)),
    ];
    for (const frame of frames) {
      const socket = new RecordingSocket();
      const wire = new SubscriptionWire(socket);
      expect(wire.claim(frame)).toBe(false);
      wire.send([entry!]);
      expect(socket.sent).toEqual([]);
    }
  });

  it("claims once, encodes an entry once for every subscriber with the same id, and writes nothing once closed or the socket is not open", () => {
    const sockets = [new RecordingSocket(), new RecordingSocket(), new RecordingSocket()];
    const wires = sockets.map((s) => new SubscriptionWire(s));
    for (const wire of wires) wire.claim(started(1));
    expect(wires[0]!.claim(started(2))).toBe(false);
    for (const wire of wires) wire.send([entry!]);
    expect(sockets[1]!.sent[0]!.data).toBe(sockets[0]!.sent[0]!.data);

    wires[1]!.close();
    sockets[2]!.readyState = 3;
    expect(wires[1]!.ready).toBe(false);
    for (const wire of wires) wire.send([entry!]);
    expect(sockets.map((s) => s.sent.length)).toEqual([2, 1, 1]);
  });

  it("writes a batch in order within one cork, and a single entry without one", () => {
    const socket = new RecordingSocket();
    const wire = new SubscriptionWire(socket);
    wire.claim(started(4));
    wire.send([entry!]);
    wire.send([entry!, next!]);
    const ids = socket.sent.map((s) => (JSON.parse(s.data.toString()) as { result: { id: string } }).result.id);
    expect(ids).toEqual([entry!.id, entry!.id, next!.id]);
    expect(socket.sent.map((s) => s.corked)).toEqual([false, true, true]);
  });

  it("ends the feed it carries when it closes: once, and at once for a wire already closed", () => {
    const wire = new SubscriptionWire(new RecordingSocket());
    let stops = 0;
    wire.onClose(() => (stops += 1));
    expect(stops).toBe(0);
    wire.close();
    wire.close();
    expect(stops).toBe(1);
    wire.onClose(() => (stops += 1));
    expect(stops).toBe(2);
  });
});
