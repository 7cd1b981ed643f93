/**
 * Reads of one key that callers asking at the same time share: at most one read per key
 * runs, and everyone who asks while it runs shares the one read that starts after it. A
 * caller is never handed a read that started before it asked, so what it gets is at least
 * as new as the state when it asked (a subscriber registered for live events before asking
 * misses nothing in between). However many callers ask, a key holds at most two reads and
 * their one result each, and a key is forgotten once its reads are done.
 */
export class CoalescedReads<T> {
  private readonly running = new Map<string, Promise<T>>();
  private readonly queued = new Map<string, Promise<T>>();

  /** `read`'s result for `key`, shared with every caller whose turn it is too. */
  read(key: string, read: () => Promise<T>): Promise<T> {
    const queued = this.queued.get(key);
    if (queued) return queued;
    const running = this.running.get(key);
    if (!running) return this.start(key, read);
    const next = running.then(
      () => this.startQueued(key, read),
      () => this.startQueued(key, read),
    );
    this.queued.set(key, next);
    return next;
  }

  /** Keys with a read running or waiting: for tests, to see nothing is kept. */
  get size(): number {
    return new Set([...this.running.keys(), ...this.queued.keys()]).size;
  }

  private startQueued(key: string, read: () => Promise<T>): Promise<T> {
    this.queued.delete(key);
    return this.start(key, read);
  }

  private start(key: string, read: () => Promise<T>): Promise<T> {
    const reading = read();
    this.running.set(key, reading);
    const forget = () => {
      if (this.running.get(key) === reading) this.running.delete(key);
    };
    reading.then(forget, forget);
    return reading;
  }
}
