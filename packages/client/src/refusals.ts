/** How long a call the server refused waits before it asks again, when the refusal names no time (a cap, not a rate). */
export const REFUSED_RETRY_MS = 5_000;
/** The longest a refusal makes a call wait, whatever it names. */
const MAX_REFUSED_WAIT_MS = 60_000;

type Answered = { data?: { code?: unknown; retryAfterSeconds?: unknown } | null } | null;

/**
 * The wait a TOO_MANY_REQUESTS answer asks for, in milliseconds: its `data.retryAfterSeconds`
 * (sent by tRPC's errorFormatter and by the HTTP edge alike, on every transport, where
 * `Retry-After` is only a header of HTTP answers), else `REFUSED_RETRY_MS`. Null for any other
 * error, the client's own included (they carry no `data`).
 */
export function refusalWaitMs(error: unknown): number | null {
  if ((error as Answered)?.data?.code !== "TOO_MANY_REQUESTS") return null;
  return rateWaitMs(error) ?? REFUSED_RETRY_MS;
}

/**
 * The wait a refusal over a rate names (`data.retryAfterSeconds`), in milliseconds; null for a
 * refusal over a cap (it names none: waiting does not free a place) and any other error.
 */
export function rateWaitMs(error: unknown): number | null {
  const data = (error as Answered)?.data;
  const seconds = data?.code === "TOO_MANY_REQUESTS" ? data.retryAfterSeconds : null;
  return typeof seconds === "number" && Number.isFinite(seconds) && seconds > 0
    ? Math.min(seconds * 1000, MAX_REFUSED_WAIT_MS)
    : null;
}

/**
 * TanStack Query's `retry` and `retryDelay` for calls to Pulse (`new QueryClient({ defaultOptions:
 * { queries: retryRefusals() } })`): a call refused for a rate is asked again when the refusal
 * says, up to `refusals` times, so a burst over the tenant's budget does not leave a view in
 * its error state; any other failure is retried `others` times with Query's own backoff.
 */
export function retryRefusals(options: { refusals?: number; others?: number } = {}) {
  const { refusals = 3, others = 1 } = options;
  return {
    retry: (failureCount: number, error: unknown) => failureCount < (refusalWaitMs(error) === null ? others : refusals),
    retryDelay: (failureCount: number, error: unknown) =>
      refusalWaitMs(error) ?? Math.min(1_000 * 2 ** failureCount, 30_000),
  };
}
