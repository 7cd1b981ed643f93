const NONE: ReadonlySet<never> = new Set();

/**
 * Open connections grouped by one key (a session, a user, a share link): how many a key
 * holds, for the caps, and which they are, so a revocation ends exactly those without a
 * scan of every connection.
 */
export class ConnectionIndex<T> {
  private readonly byKey = new Map<string, Set<T>>();

  add(key: string, item: T): void {
    const items = this.byKey.get(key);
    if (items) items.add(item);
    else this.byKey.set(key, new Set([item]));
  }

  delete(key: string, item: T): void {
    const items = this.byKey.get(key);
    if (!items?.delete(item)) return;
    if (items.size === 0) this.byKey.delete(key);
  }

  count(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }

  get(key: string): ReadonlySet<T> {
    return this.byKey.get(key) ?? NONE;
  }
}
