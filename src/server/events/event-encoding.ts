import type { PulseEvent } from "./schema";

/**
 * The JSON each event arrived in from its stream entry, kept beside the decoded event for
 * as long as the event lives. Every subscriber of a tenant shares the one decoded event, so
 * the WebSocket encoder can put these bytes into each subscriber's frame instead of
 * serialising the same event once per subscriber.
 */
const encodings = new WeakMap<object, string>();

/** Records that `json` is exactly `event` serialised (it was parsed from it). */
export function rememberEncoding(event: PulseEvent, json: string): void {
  encodings.set(event, json);
}

/** The JSON `value` was parsed from, if it is an event that came from a stream entry. */
export function encodingOf(value: unknown): string | undefined {
  return typeof value === "object" && value !== null ? encodings.get(value) : undefined;
}
