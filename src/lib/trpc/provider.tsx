"use client";

import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from "react";
import { createLinks, probeWebSocket, SESSION_AUTH, signIn, socketUrl, trpc, type ClientAuth } from "./client";
import { ConnectionMonitor, type ConnectionSnapshot } from "./connection";

const MonitorContext = createContext<ConnectionMonitor | null>(null);
const UnauthorizedContext = createContext<() => void>(signIn);

/**
 * The tRPC client, React Query, and the page's one connection monitor, speaking for `auth`
 * (the signed-in user unless told otherwise); `onUnauthorized` runs when the server no
 * longer accepts it (by default: off to the sign-in page). A share link's page nests one
 * inside the root's, so its hooks speak for the link.
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
    () => new QueryClient({ defaultOptions: { queries: { staleTime: 5_000, refetchOnWindowFocus: false, retry: 1 } } }),
  );
  const [monitor] = useState(
    () => new ConnectionMonitor(typeof window === "undefined" ? {} : { probe: probeWebSocket(socketUrl()) }),
  );
  // Read through a ref, so the links (made once) always call the latest handler.
  const unauthorized = useRef(onUnauthorized);
  useEffect(() => {
    unauthorized.current = onUnauthorized;
  });
  const [onEnded] = useState(() => () => unauthorized.current());
  const [client] = useState(() => trpc.createClient({ links: createLinks(monitor, auth, onEnded) }));
  return (
    <MonitorContext.Provider value={monitor}>
      <UnauthorizedContext.Provider value={onEnded}>
        <trpc.Provider client={client} queryClient={queryClient}>
          <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
        </trpc.Provider>
      </UnauthorizedContext.Provider>
    </MonitorContext.Provider>
  );
}

/** What to do when the server no longer accepts the page's credentials (see `TRPCProvider`). */
export function useOnUnauthorized(): () => void {
  return useContext(UnauthorizedContext);
}

export function useConnectionMonitor(): ConnectionMonitor {
  const monitor = useContext(MonitorContext);
  if (!monitor) throw new Error("useConnectionMonitor needs <TRPCProvider>");
  return monitor;
}

export function useConnection(): ConnectionSnapshot {
  const monitor = useConnectionMonitor();
  return useSyncExternalStore(monitor.subscribe, monitor.getSnapshot, monitor.getSnapshot);
}
