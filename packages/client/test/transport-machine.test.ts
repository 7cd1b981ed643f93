import { describe, expect, it } from "vitest";
import {
  INITIAL_TRANSPORT_STATE,
  nextTransportState,
  WS_FAILURES_BEFORE_SSE,
  type TransportEvent,
  type TransportState,
} from "../src/transport-machine.js";

const run = (events: TransportEvent[], from: TransportState = INITIAL_TRANSPORT_STATE) =>
  events.reduce(nextTransportState, from);
const closed: TransportEvent = { type: "wsClosed" };

describe("the transport machine", () => {
  it("stays on the WebSocket while it opens, and through one failed attempt", () => {
    expect(run([{ type: "wsOpened" }])).toMatchObject({ transport: "ws", connected: true, everConnected: true });
    expect(run([{ type: "wsOpened" }, closed])).toMatchObject({ transport: "ws", connected: false, wsFailures: 1 });
  });

  it("tries server-sent events after failed WebSocket attempts in a row, or one that never answers", () => {
    const failures = Array.from({ length: WS_FAILURES_BEFORE_SSE }, () => closed);
    expect(run(failures)).toMatchObject({ transport: "sse", connected: false });
    expect(run([{ type: "wsTimedOut" }])).toMatchObject({ transport: "sse", connected: false });
    expect(run([{ type: "wsOpened" }, { type: "wsTimedOut" }])).toMatchObject({ transport: "ws", connected: true });
  });

  it("goes to server-sent events at once when the server refuses the socket for a cap, open or not", () => {
    expect(run([{ type: "wsOpened" }, { type: "wsRefused" }])).toMatchObject({ transport: "sse", connected: false });
    expect(run([{ type: "wsRefused" }])).toMatchObject({ transport: "sse", wsFailures: 0 });
    expect(run([{ type: "wsTimedOut" }, { type: "sseOpened" }, { type: "wsRefused" }])).toMatchObject({
      transport: "sse",
      connected: true,
    });
  });

  it("treats the server's planned close (token refresh) as no failure", () => {
    const state = run([{ type: "wsOpened" }, { type: "wsClosed", planned: true }, { type: "wsClosed", planned: true }]);
    expect(state).toMatchObject({ transport: "ws", refreshing: true, wsFailures: 0 });
  });

  it("is live over SSE once a stream connects, and polls only when SSE fails too", () => {
    const onSse = run([{ type: "wsTimedOut" }, { type: "sseOpened" }]);
    expect(onSse).toMatchObject({ transport: "sse", connected: true });
    expect(run([{ type: "sseDropped" }], onSse)).toMatchObject({ transport: "sse", connected: false });
    expect(run([{ type: "sseFailed" }], onSse)).toMatchObject({ transport: "polling", connected: false });
  });

  it("returns to the WebSocket when a probe passes, from SSE or from polling", () => {
    const onSse = run([{ type: "wsTimedOut" }, { type: "sseOpened" }]);
    const polling = run([{ type: "sseFailed" }], onSse);
    for (const from of [onSse, polling]) {
      expect(run([{ type: "probeSucceeded" }], from)).toMatchObject({
        transport: "ws",
        connected: false,
        wsFailures: 0,
      });
      expect(run([{ type: "probeSucceeded" }, { type: "wsOpened" }], from)).toMatchObject({
        transport: "ws",
        connected: true,
      });
    }
  });

  it("ignores late events of a transport it has left", () => {
    const onSse = run([{ type: "wsTimedOut" }, { type: "sseOpened" }]);
    // The closed WebSocket client's last close, a stream's late failure after a probe passed.
    expect(run([closed, { type: "wsTimedOut" }], onSse)).toBe(onSse);
    const backOnWs = run([{ type: "probeSucceeded" }, { type: "wsOpened" }], onSse);
    expect(run([{ type: "sseFailed" }, { type: "sseOpened" }, { type: "sseDropped" }], backOnWs)).toBe(backOnWs);
    const polling = run([{ type: "sseFailed" }], onSse);
    expect(run([{ type: "sseOpened" }, closed], polling)).toBe(polling);
  });
});
