import { encodingOf } from "../events/event-encoding";

/**
 * The frames of tRPC's WebSocket protocol that Pulse writes itself, byte for byte what
 * `JSON.stringify` makes of tRPC's messages, with one shortcut: an item that came from a
 * stream entry is written as the entry's own JSON, so a tenant's event is serialised once
 * however many subscribers receive it, not once per subscriber. Pulse's router has no
 * data transformer, so an item is sent as it is.
 *
 * @see https://trpc.io/docs/server/websockets
 */

/** The start of every message answering request `id`: `{"id":…` and the request's JSON-RPC version, if it sent one. */
export function requestPrefix(id: string | number | null, jsonrpc: string | undefined): string {
  return `{"id":${JSON.stringify(id)}${jsonrpc === undefined ? "" : `,"jsonrpc":${JSON.stringify(jsonrpc)}`}`;
}

/** The data message carrying `tracked(trackedId, item)` for the request `prefix` starts. */
export function trackedDataFrame(prefix: string, trackedId: string, item: unknown): string {
  const id = JSON.stringify(trackedId);
  // tRPC's handler adds the result's `id` after its `data`, and JSON.stringify keeps that order.
  return `${prefix},"result":{"type":"data","data":{"id":${id},"data":${encodingOf(item) ?? stateEncoding(item) ?? JSON.stringify(item)}},"id":${id}}}`;
}

/**
 * Snapshots already serialised. Viewers of one run asking at once share one snapshot object
 * (`RunService.snapshot`), with up to 64 Ki characters of output in it: it is serialised
 * once for all of them. A snapshot is never changed once read, so its JSON stays its own.
 */
const snapshotEncodings = new WeakMap<object, string>();

/** `JSON.stringify` of a `snapshot` or `resync` item, its snapshot serialised once however many subscribers get it. */
function stateEncoding(item: unknown): string | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  const { type, snapshot } = item as { type?: unknown; snapshot?: unknown };
  const keys = Object.keys(item);
  if (
    (type !== "snapshot" && type !== "resync") ||
    typeof snapshot !== "object" ||
    snapshot === null ||
    keys.length !== 2 ||
    keys[0] !== "type"
  )
    return undefined;
  let json = snapshotEncodings.get(snapshot);
  if (json === undefined) snapshotEncodings.set(snapshot, (json = JSON.stringify(snapshot)));
  return `{"type":"${type}","snapshot":${json}}`;
}
