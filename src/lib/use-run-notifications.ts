"use client";

import { useCallback, useEffect, useState } from "react";
import type { AgentEvent } from "./trpc/types";

/**
 * Browser notifications for runs that finish while the tab is hidden, once the user allowed
 * them. Returns the event callback and a way to ask for permission.
 */
export function useRunNotifications(titles: Record<string, string>) {
  const [permission, setPermission] = useState<NotificationPermission | "unsupported">("unsupported");
  useEffect(() => {
    if ("Notification" in window) setPermission(Notification.permission);
  }, []);

  const onEvent = useCallback(
    (event: AgentEvent) => {
      const finished =
        event.type === "agent:completed" ? "completed" : event.type === "agent:failed" && !event.willRetry ? "failed" : event.type === "agent:cancelled" ? "was cancelled" : null;
      if (!finished || document.visibilityState !== "hidden" || !("Notification" in window) || Notification.permission !== "granted") return;
      new Notification(`${titles[event.agentRole] ?? event.agentRole} ${finished}`, { tag: event.runId, body: "Pulse" });
    },
    [titles],
  );

  const ask = useCallback(async () => {
    if ("Notification" in window) setPermission(await Notification.requestPermission());
  }, []);

  return { onEvent, permission, ask };
}
