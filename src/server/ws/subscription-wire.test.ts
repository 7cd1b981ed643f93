import { describe, expect, it } from "vitest";
import { parseEntries } from "../events/event-stream";
import { SubscriptionWire, type WireSocket } from "./subscription-wire";

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
  message: 'ünïcode "quoted"',
  seq: 0,
  at: "2026-01-01T00:00:00.000Z",
};
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

describe("SubscriptionWire", () => {
  it("writes tracked events for its request id as tRPC's handler would, in text frames", () => {
    for (const [id, jsonrpc] of [
      [1, undefined],
      ["sub-7", undefined],
      [3, "2.0"],
    ] as const) {
      const socket = new RecordingSocket();
      const wire = new SubscriptionWire(socket, id, jsonrpc);
      expect(wire.ready).toBe(true);
      wire.send([entry!]);
      // What tRPC's handler sends: its JSON encoder over the message.
      const expected = JSON.stringify({
        id,
        ...(jsonrpc === undefined ? {} : { jsonrpc }),
        result: { type: "data", data: { id: entry!.id, data: entry!.event }, id: entry!.id },
      });
      expect(socket.sent).toHaveLength(1);
      expect(socket.sent[0]!.binary).toBe(false);
      expect(socket.sent[0]!.data.toString()).toBe(expected);
    }
  });

  it("encodes an entry once for every subscriber with the same id, and writes nothing once closed or the socket is not open", () => {
    const sockets = [new RecordingSocket(), new RecordingSocket(), new RecordingSocket()];
    const wires = sockets.map((s) => new SubscriptionWire(s, 1, undefined));
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
    const wire = new SubscriptionWire(socket, 4, undefined);
    wire.send([entry!]);
    wire.send([entry!, next!]);
    const ids = socket.sent.map((s) => (JSON.parse(s.data.toString()) as { result: { id: string } }).result.id);
    expect(ids).toEqual([entry!.id, entry!.id, next!.id]);
    expect(socket.sent.map((s) => s.corked)).toEqual([false, true, true]);
  });

  it("ends the feed it carries when it closes: once, and at once for a wire already closed", () => {
    const wire = new SubscriptionWire(new RecordingSocket(), 5, undefined);
    let stops = 0;
    wire.onClose({ close: () => (stops += 1) });
    expect(stops).toBe(0);
    wire.close();
    wire.close();
    expect(stops).toBe(1);
    wire.onClose({ close: () => (stops += 1) });
    expect(stops).toBe(2);
  });
});
