import type { Encoder } from "@trpc/server/adapters/ws";
import { encodingOf } from "../events/event-encoding";

/**
 * tRPC's WebSocket encoder, with one shortcut: a subscription's data message whose event
 * came from a stream entry is written around the entry's own JSON, so a tenant's event is
 * serialised once however many subscribers receive it, not once per subscriber. Every
 * other message is `JSON.stringify`, exactly like tRPC's default encoder; the frames are
 * the same either way.
 *
 * @see https://trpc.io/docs/server/websockets
 */
export const pulseFrameEncoder: Encoder = {
  encode(message: unknown): string {
    const raw = trackedEventJson(message);
    if (raw === undefined) return JSON.stringify(message);
    const { id, jsonrpc, result } = message as TrackedDataMessage;
    return requestPrefix(id, jsonrpc) + trackedDataTail(result.id, raw);
  },
  decode(data: string | ArrayBuffer | Uint8Array): unknown {
    if (typeof data !== "string") throw new Error("expected a text frame");
    return JSON.parse(data);
  },
};

/** The start of every message answering request `id`: `{"id":…` and the request's JSON-RPC version, if it sent one. */
export function requestPrefix(id: string | number | null, jsonrpc: string | undefined): string {
  return `{"id":${JSON.stringify(id)}${jsonrpc === undefined ? "" : `,"jsonrpc":${JSON.stringify(jsonrpc)}`}`;
}

/** The rest of a data message carrying `tracked(entryId, event)`, around the event's JSON. */
export function trackedDataTail(entryId: string, eventJson: string): string {
  const trackedId = JSON.stringify(entryId);
  return `,"result":{"type":"data","id":${trackedId},"data":{"id":${trackedId},"data":${eventJson}}}}`;
}

/** An event's JSON: the stream entry's own when it came from one, else serialised now. */
export function entryJson(event: unknown): string {
  return encodingOf(event) ?? JSON.stringify(event);
}

/** What tRPC sends for each `tracked(id, event)` a subscription yields. */
interface TrackedDataMessage {
  id: string | number | null;
  jsonrpc?: string;
  result: { type: "data"; id: string; data: { id: string; data: unknown } };
}

function trackedEventJson(message: unknown): string | undefined {
  const result = (message as Partial<TrackedDataMessage> | null)?.result;
  if (result?.type !== "data" || typeof result.id !== "string" || typeof result.data !== "object" || result.data === null) return undefined;
  // Only a message of exactly the known shape may take the shortcut; anything else is stringified.
  if (Object.keys(message as object).some((k) => k !== "id" && k !== "jsonrpc" && k !== "result")) return undefined;
  return encodingOf(result.data.data);
}
