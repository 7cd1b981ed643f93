"use client";

import { useCallback, useSyncExternalStore } from "react";
import type { AgentEvent } from "./trpc/types";

type Permission = NotificationPermission | "unsupported";

/** Told when this page asked for permission (the browser has no event for a changed answer). */
const permissionListeners = new Set<() => void>();
const subscribePermission = (listener: () => void) => {
  permissionListeners.add(listener);
  return () => void permissionListeners.delete(listener);
};
const browserPermission = (): Permission => ("Notification" in window ? Notification.permission : "unsupported");
// The server, and the first render in the browser (hydration), know nothing of the browser's answer.
const serverPermission = (): Permission => "unsupported";

/**
 * Browser notifications for runs that finish while the tab is hidden, once the user allowed
 * them. Returns the event callback and a way to ask for permission.
 */
export function useRunNotifications(titles: Record<string, string>) {
  const permission = useSyncExternalStore(subscribePermission, browserPermission, serverPermission);

  const onEvent = useCallback(
    (event: AgentEvent) => {
      const finished =
        event.type === "agent:completed"
          ? "completed"
          : event.type === "agent:failed" && !event.willRetry
            ? "failed"
            : event.type === "agent:cancelled"
              ? "was cancelled"
              : null;
      if (
        !finished ||
        document.visibilityState !== "hidden" ||
        !("Notification" in window) ||
        Notification.permission !== "granted"
      )
        return;
      new Notification(`${titles[event.agentRole] ?? event.agentRole} ${finished}`, {
        tag: event.runId,
        body: "Pulse",
      });
    },
    [titles],
  );

  const ask = useCallback(async () => {
    if (!("Notification" in window)) return;
    await Notification.requestPermission();
    for (const listener of permissionListeners) listener();
  }, []);

  return { onEvent, permission, ask };
}
