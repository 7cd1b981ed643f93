"use client";

import { createContext, useContext, useSyncExternalStore, type ReactNode } from "react";
import type { PulseClient } from "../client.js";
import type { ConnectionSnapshot } from "../connection.js";

const PulseContext = createContext<PulseClient | null>(null);

/** Gives the hooks below it the client from `createPulseClient` (make it once, outside render). */
export function PulseProvider({ client, children }: { client: PulseClient; children: ReactNode }) {
  return <PulseContext.Provider value={client}>{children}</PulseContext.Provider>;
}

/** The client of the nearest `<PulseProvider>`. */
export function usePulseClient(): PulseClient {
  const client = useContext(PulseContext);
  if (!client) throw new Error("Pulse hooks need a <PulseProvider client={createPulseClient(…)}> above them");
  return client;
}

/** What the client's real-time link is doing: live (WebSocket), live-http (SSE), polling, … */
export function usePulseConnection(): ConnectionSnapshot {
  const { monitor } = usePulseClient();
  return useSyncExternalStore(monitor.subscribe, monitor.getSnapshot, monitor.getSnapshot);
}
