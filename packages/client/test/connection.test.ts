import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  ConnectionMonitor,
  PROBE_INTERVAL_MS,
  REFUSED_PROBE_DELAY_MS,
  SSE_CONNECT_TIMEOUT_MS,
  WS_CONNECT_TIMEOUT_MS,
} from "../src/connection.js";

describe("ConnectionMonitor", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("is live while the socket is open, reconnecting when it drops, live over HTTP when it cannot reconnect", () => {
    const monitor = new ConnectionMonitor();
    const transports: string[] = [];
    monitor.onTransportChange((t) => transports.push(t));
    monitor.retain();
    expect(monitor.getSnapshot().status).toBe("connecting");
    monitor.socketOpened();
    expect(monitor.getSnapshot().status).toBe("live");
    monitor.socketClosed();
    expect(monitor.getSnapshot()).toMatchObject({ status: "reconnecting", attempt: 1, transport: "ws" });
    monitor.socketClosed();
    expect(monitor.getSnapshot()).toMatchObject({ status: "reconnecting", transport: "sse" });
    monitor.sseOpened();
    expect(monitor.getSnapshot()).toMatchObject({ status: "live-http", transport: "sse" });
    expect(monitor.shouldPoll).toBe(false);
    expect(transports).toEqual(["sse"]);
    monitor.close();
  });

  it("gives up on a socket that never answers, then on streams that never connect, and polls", () => {
    const monitor = new ConnectionMonitor();
    monitor.retain();
    vi.advanceTimersByTime(WS_CONNECT_TIMEOUT_MS);
    expect(monitor.transport).toBe("sse");
    expect(monitor.shouldPoll).toBe(false);
    vi.advanceTimersByTime(SSE_CONNECT_TIMEOUT_MS);
    expect(monitor.getSnapshot().status).toBe("polling");
    expect(monitor.shouldPoll).toBe(true);
    monitor.close();
  });

  it("probes for the WebSocket while on SSE or polling, and returns to it when the probe passes", async () => {
    let upgradesPass = false;
    let probes = 0;
    const monitor = new ConnectionMonitor({ probe: async () => (probes++, upgradesPass) });
    monitor.retain();
    vi.advanceTimersByTime(WS_CONNECT_TIMEOUT_MS);
    monitor.sseOpened();
    await vi.advanceTimersByTimeAsync(PROBE_INTERVAL_MS * 2);
    expect(probes).toBe(2);
    expect(monitor.transport).toBe("sse");
    monitor.sseFailed();
    expect(monitor.getSnapshot().status).toBe("polling");
    upgradesPass = true;
    await vi.advanceTimersByTimeAsync(PROBE_INTERVAL_MS);
    expect(monitor.getSnapshot()).toMatchObject({ transport: "ws", status: "reconnecting" });
    monitor.socketOpened();
    expect(monitor.getSnapshot().status).toBe("live");
    // On the WebSocket, no more probes.
    await vi.advanceTimersByTimeAsync(PROBE_INTERVAL_MS * 3);
    expect(probes).toBe(3);
    monitor.close();
  });

  it("moves to SSE at once when the server refuses the socket for a cap, and probes for it again only after a minute", async () => {
    let probes = 0;
    const monitor = new ConnectionMonitor({ probe: async () => (probes++, true) });
    monitor.retain();
    monitor.socketOpened();
    monitor.socketRefused();
    expect(monitor.getSnapshot()).toMatchObject({ transport: "sse", status: "reconnecting" });
    monitor.sseOpened();
    expect(monitor.getSnapshot().status).toBe("live-http");
    await vi.advanceTimersByTimeAsync(REFUSED_PROBE_DELAY_MS - 1);
    expect(probes).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(probes).toBe(1);
    expect(monitor.transport).toBe("ws");
    monitor.close();
  });

  it("says updates are unavailable after failed polls, until one succeeds", () => {
    const monitor = new ConnectionMonitor();
    monitor.retain();
    vi.advanceTimersByTime(WS_CONNECT_TIMEOUT_MS + SSE_CONNECT_TIMEOUT_MS);
    monitor.pollFailed();
    expect(monitor.getSnapshot().status).toBe("polling");
    monitor.pollFailed();
    expect(monitor.getSnapshot().status).toBe("unavailable");
    monitor.pollSucceeded();
    expect(monitor.getSnapshot().status).toBe("polling");
    monitor.close();
  });

  it("does not count a lazy socket closing while no live view is on the page", () => {
    const monitor = new ConnectionMonitor();
    const release = monitor.retain();
    monitor.socketOpened();
    release();
    monitor.socketClosed();
    monitor.socketClosed();
    vi.advanceTimersByTime(WS_CONNECT_TIMEOUT_MS * 3);
    expect(monitor.transport).toBe("ws");
    expect(monitor.getSnapshot().attempt).toBe(0);
  });

  it("bumps the refresh counter for the manual refresh", () => {
    const monitor = new ConnectionMonitor();
    const before = monitor.getSnapshot().refreshes;
    monitor.refresh();
    expect(monitor.getSnapshot().refreshes).toBe(before + 1);
  });

  it("shows the server's planned close for a fresh token as no outage", () => {
    const monitor = new ConnectionMonitor();
    monitor.retain();
    monitor.socketOpened();
    monitor.socketClosed(true);
    expect(monitor.getSnapshot().status).toBe("live");
    monitor.socketOpened();
    expect(monitor.getSnapshot().status).toBe("live");
    monitor.close();
  });
});
