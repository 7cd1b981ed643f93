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
    const trackedId = JSON.stringify(result.id);
    const version = jsonrpc === undefined ? "" : `,"jsonrpc":${JSON.stringify(jsonrpc)}`;
    return `{"id":${JSON.stringify(id)}${version},"result":{"type":"data","id":${trackedId},"data":{"id":${trackedId},"data":${raw}}}}`;
  },
  decode(data: string | ArrayBuffer | Uint8Array): unknown {
    if (typeof data !== "string") throw new Error("expected a text frame");
    return JSON.parse(data);
  },
};

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
