import { createTRPCClient, TRPCClientError, type Operation, type TRPCLink } from "@trpc/client";
import { observable, type Observer } from "@trpc/server/observable";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { PulseRouter as AppRouter } from "../src/router.js";
import { TOKEN_EXPIRED } from "../src/session-messages.js";
import { REFUSED_RETRY_MS } from "../src/refusals.js";
import { subscriptionTransportLink, WS_RESUBSCRIBE_DELAY_MS, type TransportSwitch } from "../src/transport-link.js";
import type { Transport } from "../src/transport-machine.js";

/** A transport link that records each attempt (its op) and lets the test answer it. */
function scriptedLink() {
  const attempts: {
    op: Operation;
    observer: Observer<{ result: Record<string, unknown> }, unknown>;
    closed: boolean;
  }[] = [];
  const link: TRPCLink<AppRouter> =
    () =>
    ({ op }) =>
      observable((observer) => {
        const attempt = { op, observer: observer as never, closed: false };
        attempts.push(attempt);
        return () => (attempt.closed = true);
      });
  return { link, attempts };
}

class Switch implements TransportSwitch {
  transport: Transport = "ws";
  reports: string[] = [];
  private readonly listeners = new Set<(t: Transport) => void>();
  onTransportChange(listener: (t: Transport) => void) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  move(transport: Transport) {
    this.transport = transport;
    for (const listener of this.listeners) listener(transport);
  }
  sseOpened = () => this.reports.push("opened");
  sseDropped = () => this.reports.push("dropped");
  sseFailed = () => this.reports.push("failed");
}

function setup() {
  const transports = new Switch();
  const ws = scriptedLink();
  const sse = scriptedLink();
  const client = createTRPCClient<AppRouter>({
    links: [subscriptionTransportLink({ transports, ws: ws.link, sse: sse.link })],
  });
  const seen: string[] = [];
  const errors: string[] = [];
  let completed = false;
  const subscription = client.context.onStatusChanged.subscribe(
    {},
    { onData: (d) => seen.push(d.id), onError: (e) => errors.push(e.message), onComplete: () => (completed = true) },
  );
  const item = (id: string) => ({ result: { type: "data", id, data: { id, data: { type: "snapshot" } } } });
  return { transports, ws, sse, seen, errors, subscription, item, completed: () => completed };
}

describe("subscriptionTransportLink", () => {
  it("moves a subscription to SSE and back, each time a new attempt resumed after the last id seen", () => {
    const { transports, ws, sse, seen, item } = setup();
    ws.attempts[0]!.observer.next(item("1-0"));
    ws.attempts[0]!.observer.next(item("2-0"));
    transports.move("sse");
    expect(ws.attempts[0]!.closed).toBe(true);
    expect(sse.attempts[0]!.op.input).toEqual({ lastEventId: "2-0" });
    sse.attempts[0]!.observer.next({ result: { type: "started" } });
    sse.attempts[0]!.observer.next(item("3-0"));
    transports.move("polling");
    expect(sse.attempts[0]!.closed).toBe(true);
    transports.move("ws");
    expect(ws.attempts[1]!.op.input).toEqual({ lastEventId: "3-0" });
    const ids = [ws.attempts[0]!, sse.attempts[0]!, ws.attempts[1]!].map((a) => a.op.id);
    expect(new Set(ids).size).toBe(3);
    expect(seen).toEqual(["1-0", "2-0", "3-0"]);
    expect(transports.reports).toEqual(["opened"]);
  });

  it("ignores what a replaced attempt says late: its stopped, its completion, its data", () => {
    const { transports, ws, sse, seen, item, completed } = setup();
    transports.move("sse");
    ws.attempts[0]!.observer.next(item("9-0"));
    ws.attempts[0]!.observer.next({ result: { type: "stopped" } });
    ws.attempts[0]!.observer.complete();
    expect(completed()).toBe(false);
    expect(seen).toEqual([]);
    sse.attempts[0]!.observer.next(item("1-0"));
    expect(seen).toEqual(["1-0"]);
  });

  it("subscribes again over SSE with a fresh attempt when the stream's token expires", () => {
    const { transports, sse, item, errors } = setup();
    transports.move("sse");
    sse.attempts[0]!.observer.next(item("5-0"));
    sse.attempts[0]!.observer.error(new TRPCClientError(TOKEN_EXPIRED));
    expect(sse.attempts[1]!.op.input).toEqual({ lastEventId: "5-0" });
    expect(errors).toEqual([]);
  });

  it("reports a stream that cannot connect, and passes the server's errors on", () => {
    const { transports, sse, errors } = setup();
    transports.move("sse");
    sse.attempts[0]!.observer.error(TRPCClientError.from(new Error("EventSource failed")));
    expect(transports.reports).toEqual(["failed"]);
    expect(errors).toEqual([]);
    transports.move("polling");
    transports.move("sse");
    const forbidden = TRPCClientError.from({
      error: { code: -32003, message: "not yours", data: { code: "FORBIDDEN", httpStatus: 403 } },
    });
    sse.attempts[1]!.observer.error(forbidden);
    expect(errors).toEqual(["not yours"]);
  });

  it("takes TOO_MANY_REQUESTS as a refusal for now: over a rate, again after the time it names; over a cap, again later on the socket and the next transport from a stream", async () => {
    vi.useFakeTimers();
    const { transports, ws, sse, errors } = setup();
    const tooMany = (message: string, retryAfterSeconds: number | null = null) =>
      TRPCClientError.from({
        error: { code: -32029, message, data: { code: "TOO_MANY_REQUESTS", httpStatus: 429, retryAfterSeconds } },
      });
    // The wait is the error's data, not its message (which may say anything).
    ws.attempts[0]!.observer.error(tooMany("this share link's viewers may open at most 20 views per second", 3));
    await vi.advanceTimersByTimeAsync(2_999);
    expect(ws.attempts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(ws.attempts).toHaveLength(2);
    ws.attempts[1]!.observer.error(tooMany("at most 20 connections per user"));
    await vi.advanceTimersByTimeAsync(REFUSED_RETRY_MS);
    expect(ws.attempts).toHaveLength(3);

    // On an event stream, a rate's refusal waits and asks again there; a cap's moves the page on.
    transports.move("sse");
    sse.attempts[0]!.observer.error(tooMany("this share link's viewers may open at most 20 views per second", 2));
    expect(transports.reports).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(sse.attempts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sse.attempts).toHaveLength(2);
    sse.attempts[1]!.observer.error(tooMany("at most 60 event streams per user"));
    expect(transports.reports).toEqual(["failed"]);
    expect(errors).toEqual([]);
  });

  it("asks again on the WebSocket when the client failed the subscription there without a word from the server", async () => {
    vi.useFakeTimers();
    const { transports, ws, sse, seen, errors, item } = setup();
    ws.attempts[0]!.observer.next(item("1-0"));
    // The socket closed between opening and sending the subscription: tRPC's client fails it.
    ws.attempts[0]!.observer.error(TRPCClientError.from(new Error("Active connection is not open")));
    expect(errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(WS_RESUBSCRIBE_DELAY_MS - 1);
    expect(ws.attempts).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(ws.attempts[1]!.op.input).toEqual({ lastEventId: "1-0" });
    ws.attempts[1]!.observer.next(item("2-0"));
    expect(seen).toEqual(["1-0", "2-0"]);

    // Failed again, and the page moves to SSE before the retry: the retry is the move's attempt.
    ws.attempts[1]!.observer.error(TRPCClientError.from(new Error("Active connection is not open")));
    transports.move("sse");
    await vi.advanceTimersByTimeAsync(WS_RESUBSCRIBE_DELAY_MS);
    expect(ws.attempts).toHaveLength(2);
    expect(sse.attempts).toHaveLength(1);

    // The server's errors still end the subscription.
    transports.move("ws");
    ws.attempts[2]!.observer.error(
      TRPCClientError.from({ error: { code: -32001, message: "no", data: { code: "UNAUTHORIZED", httpStatus: 401 } } }),
    );
    expect(errors).toEqual(["no"]);
  });
});

afterEach(() => {
  vi.useRealTimers();
});
