/**
 * Event ids are Redis stream entry ids (`<ms>-<seq>`), strictly increasing per tenant. They
 * compare as number pairs: as strings, "10-0" would sort before "9-0". Shared by the server
 * and the browser, which both order and deduplicate events by id.
 */
export function compareStreamIds(a: string, b: string): number {
  const [aMs = "0", aSeq = "0"] = a.split("-");
  const [bMs = "0", bSeq = "0"] = b.split("-");
  const ms = BigInt(aMs) - BigInt(bMs);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(aSeq) - BigInt(bSeq);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

/** The id before any event: resuming from it replays everything the stream still holds. */
export const STREAM_ORIGIN = "0-0";
