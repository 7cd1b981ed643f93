import type { Operation, TRPCLink } from "@trpc/client";
import { observable, type Unsubscribable } from "@trpc/server/observable";
import type { AnyRouter } from "@trpc/server";
import { TOKEN_EXPIRED } from "@/shared/session-messages";
import type { ConnectionMonitor, SubscriptionTransport } from "./connection";

/** Each reopened subscription's request id is its operation's plus this many per reopening, so it never meets the late `stopped` of the one it replaced. */
const REOPENED_ID_STEP = 1_000_000_000;

/** How long an event stream may take to start before the page takes server-sent events for blocked (a buffering proxy holds them back). */
export const EVENT_STREAM_START_MS = 5_000;

/**
 * Subscriptions over the transport the monitor prefers now: the WebSocket (`ws`) or
 * server-sent events (`sse`). When the preference changes, each subscription is opened again
 * on the other transport from the last `tracked` id it received, so nothing is lost or
 * repeated; an event stream ended by its token's expiry is opened again the same way (its
 * `connectionParams` then carry a fresh token). An event stream that fails, or does not
 * start within `EVENT_STREAM_START_MS`, is reported to the monitor, which then polls.
 *
 * @see https://trpc.io/docs/client/links#creating-a-custom-link
 */
export function preferredTransportLink<TRouter extends AnyRouter>(options: {
  monitor: ConnectionMonitor;
  ws: TRPCLink<TRouter>;
  sse: TRPCLink<TRouter>;
}): TRPCLink<TRouter> {
  return (runtime) => {
    const links = { ws: options.ws(runtime), sse: options.sse(runtime) };
    const { monitor } = options;
    return ({ op }) =>
      observable((observer) => {
        let lastEventId: string | undefined;
        let current: Unsubscribable | null = null;
        let transport: SubscriptionTransport = monitor.subscriptionTransport;
        let startTimer: ReturnType<typeof setTimeout> | undefined;
        let opened = 0;

        const open = () => {
          current?.unsubscribe();
          current = null;
          clearTimeout(startTimer);
          transport = monitor.subscriptionTransport;
          const on = transport;
          const generation = ++opened;
          // What a replaced subscription still says is not this one's.
          const stale = () => generation !== opened;
          if (on === "sse") {
            monitor.eventStreamConnecting();
            startTimer = setTimeout(() => monitor.eventStreamFailed(), EVENT_STREAM_START_MS);
          }
          const resumed: Operation = {
            ...op,
            id: op.id + (generation - 1) * REOPENED_ID_STEP,
            ...(lastEventId === undefined ? {} : { input: { ...(op.input as object | undefined), lastEventId } }),
          };
          current = links[on]({ op: resumed, next: () => observable(() => undefined) }).subscribe({
            next(envelope) {
              if (stale()) return;
              const result = envelope.result as { type?: string; id?: string };
              if (on === "sse" && result.type === "started") {
                clearTimeout(startTimer);
                monitor.eventStreamOpened();
              }
              if (result.id !== undefined && (result.type === undefined || result.type === "data")) lastEventId = result.id;
              observer.next(envelope);
            },
            error(error) {
              if (stale()) return;
              if (on !== "sse") return observer.error(error);
              clearTimeout(startTimer);
              if (error.message === TOKEN_EXPIRED) return open();
              const code = (error as { data?: { code?: string } | null }).data?.code;
              // Refused credentials and refused input are the subscription's answer, whatever the transport.
              if (code !== undefined && code !== "TOO_MANY_REQUESTS") return observer.error(error);
              monitor.eventStreamFailed();
            },
            complete() {
              if (!stale()) observer.complete();
            },
          });
        };

        const stopWatching = monitor.subscribe(() => {
          if (monitor.subscriptionTransport !== transport) open();
        });
        open();
        return () => {
          stopWatching();
          clearTimeout(startTimer);
          current?.unsubscribe();
          current = null;
        };
      });
  };
}
