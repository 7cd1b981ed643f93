import calculateSlot from "cluster-key-slot";

/**
 * Splits the keys of one round of stream reads into XREAD calls, as indexes into `keys`:
 * at most `maxKeys` keys each (so no call, and no spread of its arguments, grows with the
 * number of followed tenants), and on a cluster only keys of one hash slot together, since
 * a command whose keys span slots is refused with CROSSSLOT.
 *
 * @see https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#key-distribution-model
 */
export function planStreamReads(keys: readonly string[], options: { bySlot: boolean; maxKeys: number }): number[][] {
  const { bySlot, maxKeys } = options;
  if (maxKeys < 1) throw new RangeError("maxKeys must be at least 1");
  const calls: number[][] = [];
  if (!bySlot) {
    for (let start = 0; start < keys.length; start += maxKeys) {
      calls.push(Array.from({ length: Math.min(maxKeys, keys.length - start) }, (_, i) => start + i));
    }
    return calls;
  }
  // The call being filled for each slot; a full one is left in `calls` and a new one begun.
  const open = new Map<number, number[]>();
  keys.forEach((key, index) => {
    const slot = calculateSlot(key);
    let call = open.get(slot);
    if (!call || call.length === maxKeys) {
      call = [];
      open.set(slot, call);
      calls.push(call);
    }
    call.push(index);
  });
  return calls;
}
