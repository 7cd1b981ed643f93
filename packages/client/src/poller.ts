import { withDeadline } from "./deadline.js";

export interface FeedEntry<TItem> {
  id: string;
  item: TItem;
}

/** One page of a feed's polling twin (`agent.events`, `context.events`, `share.events`). */
export interface FeedPage<TItem> {
  items: FeedEntry<TItem>[];
  cursor: string;
  /** The server has more after `cursor`: poll again at once (the page may even be empty). */
  more: boolean;
}

/** How long one poll may take before it counts as failed (and its request is aborted). */
export const POLL_TIMEOUT_MS = 15_000;

export interface PollerOptions<TItem> {
  /** Reads the page after `cursor`; `signal` aborts when the poll is given up on (pass it to the request). */
  fetchPage: (cursor: string | undefined, signal: AbortSignal) => Promise<FeedPage<TItem>>;
  /** Where the next page starts. */
  cursor: () => string | null;
  /** Applies a page's items and takes its cursor. */
  onPage: (page: FeedPage<TItem>) => void;
  /**
   * A page that failed: `"stop"` ends polling (ended credentials), `"retry"` polls again after
   * the interval, `{ retryInMs }` after that long instead (a refusal that says when to come back).
   */
  onError: (error: unknown) => "stop" | "retry" | { retryInMs: number };
  intervalMs: number;
  /** Default `POLL_TIMEOUT_MS`. */
  timeoutMs?: number;
}

/**
 * Polls a feed's query twin until stopped: again at once while a page says `more`, since a
 * filtered page may be empty while later pages hold its events; after `intervalMs` once caught
 * up or after a failure (or as long as `onError` says). A poll that has not answered within
 * `timeoutMs` fails, so one request that never ends does not end polling. Returns the function
 * that stops it.
 */
export function startPolling<TItem>(options: PollerOptions<TItem>): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const poll = async () => {
    let caughtUp = true;
    let waitMs: number | undefined;
    try {
      const cursor = options.cursor() ?? undefined;
      const page = await withDeadline(
        (signal) => options.fetchPage(cursor, signal),
        options.timeoutMs ?? POLL_TIMEOUT_MS,
        "A poll",
      );
      if (stopped) return;
      options.onPage(page);
      caughtUp = !page.more;
    } catch (error) {
      if (stopped) return;
      const answer = options.onError(error);
      if (answer === "stop") return;
      if (answer !== "retry") waitMs = answer.retryInMs;
    }
    if (!stopped) timer = setTimeout(() => void poll(), waitMs ?? (caughtUp ? options.intervalMs : 0));
  };
  void poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
