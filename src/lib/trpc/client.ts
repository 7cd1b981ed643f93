"use client";

import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink, type TRPCLink } from "@trpc/client";
import { createTRPCReact } from "@trpc/react-query";
import type { AppRouter } from "@/server/trpc/root";

/** The typed React hooks: `trpc.agent.onStatus.useSubscription(...)` and friends. */
export const trpc = createTRPCReact<AppRouter>();

const TRPC_PATH = "/api/trpc";

/** For the socket's token: a plain HTTP client, authenticated by the httpOnly session cookie. */
const httpClient = createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: TRPC_PATH })] });

/**
 * Subscriptions go over one WebSocket on the page's own origin; queries and mutations over
 * HTTP. The socket authenticates with `connectionParams`, evaluated again on every
 * reconnect, so a reconnect always carries a fresh short-lived token and never puts one in
 * the URL.
 *
 * @see https://trpc.io/docs/client/links/wsLink#connection-params
 */
export function createLinks(): TRPCLink<AppRouter>[] {
  // Server rendering never subscribes or fetches through this client (hooks run in effects).
  if (typeof window === "undefined") return [httpBatchLink({ url: `http://localhost${TRPC_PATH}` })];
  const { protocol, host } = window.location;
  const ws = createWSClient({
    url: `${protocol === "https:" ? "wss" : "ws"}://${host}${TRPC_PATH}`,
    connectionParams: async () => {
      const { token } = await httpClient.auth.socketToken.query();
      return { token };
    },
    retryDelayMs: (attempt) => Math.min(500 * 2 ** attempt, 10_000),
  });
  return [
    splitLink({
      condition: (op) => op.type === "subscription",
      true: wsLink({ client: ws }),
      false: httpBatchLink({ url: TRPC_PATH }),
    }),
  ];
}
