"use client";

import { PulseProvider, usePulseClient, usePulseConnection } from "@pulse/client/react";
import { retryRefusals, type ConnectionMonitor, type ConnectionSnapshot } from "@pulse/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useEffect, useRef, useState, type ReactNode } from "react";
import { createDashboardClient, SESSION_AUTH, signIn, trpc, type ClientAuth } from "./client";

/**
 * The page's Pulse client (`@pulse/client`, speaking for `auth`: the signed-in user unless told
 * otherwise) under `<PulseProvider>` for the live hooks, and React Query over the same client
 * for the dashboard's own queries. `onUnauthorized` runs when the server no longer accepts the
 * credentials (by default: off to the sign-in page). A share link's page nests one inside the
 * root's, so its hooks speak for the link.
 */
export function TRPCProvider({
  children,
  auth = SESSION_AUTH,
  onUnauthorized = signIn,
}: {
  children: ReactNode;
  auth?: ClientAuth;
  onUnauthorized?: () => void;
}) {
  const [queryClient] = useState(
    () =>
      new QueryClient({
        // A query refused for the tenant's rate asks again when told, rather than showing an error.
        defaultOptions: { queries: { staleTime: 5_000, refetchOnWindowFocus: false, ...retryRefusals() } },
      }),
  );
  // Read through a ref, so the client (made once) always calls the latest handler.
  const unauthorized = useRef(onUnauthorized);
  useEffect(() => {
    unauthorized.current = onUnauthorized;
  });
  const [onEnded] = useState(() => () => unauthorized.current());
  const [client] = useState(() => createDashboardClient(auth, onEnded));
  return (
    <PulseProvider client={client}>
      <trpc.Provider client={client.trpc} queryClient={queryClient}>
        <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
      </trpc.Provider>
    </PulseProvider>
  );
}

export function useConnectionMonitor(): ConnectionMonitor {
  return usePulseClient().monitor;
}

export function useConnection(): ConnectionSnapshot {
  return usePulseConnection();
}
