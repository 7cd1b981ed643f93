import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConnectionMonitor, POLL_AFTER_MS } from "./connection";

describe("ConnectionMonitor", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("is live while the socket is open, reconnecting when it drops, polling after a while", () => {
    const monitor = new ConnectionMonitor();
    monitor.retain();
    expect(monitor.getSnapshot().status).toBe("connecting");
    monitor.socketOpened();
    expect(monitor.getSnapshot().status).toBe("live");
    monitor.socketClosed();
    expect(monitor.getSnapshot()).toMatchObject({ status: "reconnecting", attempt: 1 });
    expect(monitor.shouldPoll).toBe(false);
    vi.advanceTimersByTime(POLL_AFTER_MS + 20);
    expect(monitor.getSnapshot().status).toBe("polling");
    expect(monitor.shouldPoll).toBe(true);
    monitor.socketOpened();
    expect(monitor.getSnapshot()).toMatchObject({ status: "live", attempt: 0 });
  });

  it("says updates are unavailable after failed polls, until one succeeds", () => {
    const monitor = new ConnectionMonitor();
    monitor.retain();
    vi.advanceTimersByTime(POLL_AFTER_MS + 20);
    monitor.pollFailed();
    expect(monitor.getSnapshot().status).toBe("polling");
    monitor.pollFailed();
    expect(monitor.getSnapshot().status).toBe("unavailable");
    monitor.pollSucceeded();
    expect(monitor.getSnapshot().status).toBe("polling");
  });

  it("does not count a lazy socket closing while no live view is on the page", () => {
    const monitor = new ConnectionMonitor();
    const release = monitor.retain();
    monitor.socketOpened();
    release();
    monitor.socketClosed();
    vi.advanceTimersByTime(POLL_AFTER_MS * 3);
    expect(monitor.shouldPoll).toBe(false);
    expect(monitor.getSnapshot().attempt).toBe(0);
  });

  it("bumps the refresh counter for the manual refresh", () => {
    const monitor = new ConnectionMonitor();
    const before = monitor.getSnapshot().refreshes;
    monitor.refresh();
    expect(monitor.getSnapshot().refreshes).toBe(before + 1);
  });
});

describe("ConnectionMonitor token refresh", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("shows the server's planned close for a fresh token as no outage", () => {
    const monitor = new ConnectionMonitor();
    monitor.retain();
    monitor.socketOpened();
    monitor.socketClosed(true);
    expect(monitor.getSnapshot().status).toBe("live");
    monitor.socketOpened();
    expect(monitor.getSnapshot().status).toBe("live");
  });
});
