"use client";

import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createContext, useContext, useState, useSyncExternalStore, type ReactNode } from "react";
import { createLinks, trpc } from "./client";
import { ConnectionMonitor, type ConnectionSnapshot } from "./connection";

const MonitorContext = createContext<ConnectionMonitor | null>(null);

/** The tRPC client, React Query, and the page's one connection monitor. */
export function TRPCProvider({ children }: { children: ReactNode }) {
  const [queryClient] = useState(
    () => new QueryClient({ defaultOptions: { queries: { staleTime: 5_000, refetchOnWindowFocus: false, retry: 1 } } }),
  );
  const [monitor] = useState(() => new ConnectionMonitor());
  const [client] = useState(() => trpc.createClient({ links: createLinks(monitor) }));
  return (
    <MonitorContext.Provider value={monitor}>
      <trpc.Provider client={client} queryClient={queryClient}>
        <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
      </trpc.Provider>
    </MonitorContext.Provider>
  );
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
