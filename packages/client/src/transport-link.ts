import type { Operation, OperationLink, TRPCClientError, TRPCLink } from "@trpc/client";
import type { InferrableClientTypes } from "@trpc/server/unstable-core-do-not-import";
import { observable, type Unsubscribable } from "@trpc/server/observable";
import { rateWaitMs, refusalWaitMs } from "./refusals.js";
import { TOKEN_EXPIRED } from "./session-messages.js";
import type { Transport } from "./transport-machine.js";

/**
 * How long a subscription waits before it asks again on the WebSocket after tRPC's client
 * failed it there without a word from the server (see `subscriptionTransportLink`).
 */
export const WS_RESUBSCRIBE_DELAY_MS = 500;

/** What the link needs of the page's `ConnectionMonitor`: the transport to use, and where to report streams. */
export interface TransportSwitch {
  readonly transport: Transport;
  onTransportChange(listener: (transport: Transport) => void): () => void;
  sseOpened(): void;
  sseDropped(): void;
  sseFailed(): void;
}

/**
 * A terminating link for subscriptions that carries each one over the transport the switch
 * names (wsLink or httpSubscriptionLink), and moves it when the transport changes: the old
 * attempt is unsubscribed, a new one starts on the other link from the last `tracked` id the
 * subscription saw (no second snapshot, nothing lost; the hooks skip ids they already
 * applied). While the page polls, the subscription holds no attempt at all.
 *
 * Every attempt is its own operation with its own id, and only the current attempt may end
 * the subscription: a late `stopped` or completion of a replaced attempt (the WebSocket
 * client completes its subscriptions when it is closed) is ignored.
 *
 * Only the server's errors end a subscription, and not all of them. When the socket closes
 * after it opened but before the client sent the subscription (tRPC's client then fails the
 * request, "Active connection is not open", instead of sending it on the next socket, and the
 * hooks would never subscribe again), the subscription asks again on the current transport
 * shortly after. TOO_MANY_REQUESTS is a refusal for now, not for good: over a rate (it names
 * its wait, `data.retryAfterSeconds`: a share link's views) the subscription asks again on the
 * same transport once that has passed; over a cap, an event stream's moves the page on to
 * polling, and on the WebSocket (a connection cap's 4429 close moves the page to event streams)
 * it asks again after `REFUSED_RETRY_MS` (see `refusalWaitMs`).
 *
 * @see https://trpc.io/docs/client/links/splitLink
 * @see https://trpc.io/docs/client/links/httpSubscriptionLink
 */
export function subscriptionTransportLink<TRouter extends InferrableClientTypes>(options: {
  transports: TransportSwitch;
  ws: TRPCLink<TRouter>;
  sse: TRPCLink<TRouter>;
}): TRPCLink<TRouter> {
  return (runtime) => {
    const links: Record<Exclude<Transport, "polling">, OperationLink<TRouter>> = {
      ws: options.ws(runtime),
      sse: options.sse(runtime),
    };
    let attempts = 0;
    return ({ op }) =>
      observable((observer) => {
        const { transports } = options;
        let lastEventId: string | undefined;
        let current: { transport: Transport; subscription: Unsubscribable | null } | null = null;
        let retry: ReturnType<typeof setTimeout> | undefined;

        const start = (transport: Transport) => {
          stop();
          const attempt: { transport: Transport; subscription: Unsubscribable | null } = {
            transport,
            subscription: null,
          };
          current = attempt;
          if (transport === "polling") return;
          const isCurrent = () => current === attempt;
          const child: Operation = { ...op, id: ++attempts, input: withLastEventId(op.input, lastEventId) };
          let started = false;
          attempt.subscription = links[transport]({ op: child, next: terminal }).subscribe({
            next(envelope) {
              if (!isCurrent()) return;
              const { result } = envelope;
              if ("type" in result && result.type === "state") {
                if (transport === "sse" && started && result.state === "connecting" && result.error)
                  transports.sseDropped();
                return;
              }
              if ("type" in result && result.type === "stopped") return;
              if ("type" in result && result.type === "started") {
                if (transport === "sse") transports.sseOpened();
                if (started) return;
                started = true;
              }
              if ("id" in result && typeof result.id === "string") lastEventId = result.id;
              observer.next(envelope);
            },
            error(error) {
              if (!isCurrent()) return;
              if (transport === "sse" && error.message === TOKEN_EXPIRED) return start(transports.transport);
              const refusedFor = refusalWaitMs(error);
              // The server's other errors end the subscription.
              if (error.data && refusedFor === null) return observer.error(error as TRPCClientError<TRouter>);
              attempt.subscription = null;
              // The stream could not connect (refused, not an event stream) or is over the stream
              // caps: the next transport. Refused over a rate (a share link's views), it waits instead.
              if (transport === "sse" && rateWaitMs(error) === null) return transports.sseFailed();
              // tRPC's client failed it on its own, or the server refused it for a rate: again, later.
              retry = setTimeout(
                () => isCurrent() && start(transports.transport),
                refusedFor ?? WS_RESUBSCRIBE_DELAY_MS,
              );
            },
            complete() {
              if (isCurrent() && transports.transport === transport) observer.complete();
            },
          });
        };

        const stop = () => {
          clearTimeout(retry);
          const previous = current;
          current = null;
          previous?.subscription?.unsubscribe();
        };

        const unfollow = transports.onTransportChange(start);
        start(transports.transport);
        return () => {
          unfollow();
          stop();
        };
      });
  };
}

/** The last link of each chain: wsLink and httpSubscriptionLink never call it. */
function terminal(): never {
  throw new Error("subscriptionTransportLink: the transport links must terminate the chain");
}

/** The input resumed after `lastEventId`, as tRPC's own links resume a tracked subscription. */
function withLastEventId(input: unknown, lastEventId: string | undefined): unknown {
  if (!lastEventId || (input != null && typeof input !== "object")) return input;
  return { ...(input ?? {}), lastEventId };
}
