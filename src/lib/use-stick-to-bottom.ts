"use client";

import { useEffect, useLayoutEffect, useRef } from "react";

/** How close to the end a reader must be (px) to count as following along. */
const PINNED_WITHIN_PX = 24;

/**
 * Keeps a scrolling box (a timeline, streamed output) at its newest entry as entries
 * arrive, as long as the reader is there; one who scrolled up to read something older is
 * left where they are until they scroll back down. With `startAtEnd` false the box opens at
 * its top (a finished run's output, read from the start) and follows once scrolled down.
 */
export function useStickToBottom<T extends HTMLElement>(content: unknown, startAtEnd = true) {
  const ref = useRef<T>(null);
  const pinned = useRef(startAtEnd);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const onScroll = () => {
      pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight <= PINNED_WITHIN_PX;
    };
    el.addEventListener("scroll", onScroll, { passive: true });
    return () => el.removeEventListener("scroll", onScroll);
  }, []);
  useLayoutEffect(() => {
    const el = ref.current;
    if (el && pinned.current) el.scrollTop = el.scrollHeight;
  }, [content]);
  return ref;
}
