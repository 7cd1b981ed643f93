/**
 * What Pulse may cost, kept by `budgets.int.test.ts`. Several of the server's shapes exist
 * for these figures (classes rather than closures for what every idle subscriber keeps, an
 * iterator object rather than an async generator per feed, a subscription's snapshot let go
 * once sent, one write per event-loop turn for the command connection): a change that undoes
 * one fails the test instead of silently undoing a benchmark result.
 *
 * Each budget is a figure measured on the development machine (docs/BENCHMARK.md has the
 * history); the test fails when a measurement exceeds budget × margin. Raise a budget only
 * for a change that buys something worth it, and say what in the commit.
 */
export const BUDGETS = {
  /** Heap (after full collections) an open, authenticated WebSocket connection holds in the server, in bytes. */
  heapPerIdleConnectionBytes: 5_200,
  /** Heap one idle `agent.onStatus` subscription adds to its connection, after its snapshot went out, in bytes. */
  heapPerSubscriptionBytes: 6_200,
  /** CPU time (user + system) one process spends publishing one progress event through `EventBus.publish`, in µs. */
  publisherCpuUsPerProgressEvent: 120,
} as const;

/**
 * How far a measurement may exceed its budget before the test fails. Heap after full
 * collections varied by up to 15% between runs. CPU time per event, even the cheapest of
 * three rounds, varied nearly twofold with the load other work put on the shared two-core
 * machine (70 to 169 µs, at load averages up to 15), so it catches a change that doubles the
 * cost, not one that adds a fifth.
 */
export const MARGINS = {
  heap: 1.25,
  cpu: 2,
} as const;
