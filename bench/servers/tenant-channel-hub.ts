import type { Redis } from "ioredis";

/**
 * The local subscribers of each tenant, fed by one Redis pub/sub connection: a tenant's
 * channel is subscribed while it has a subscriber in this process and dropped after the
 * last one leaves, so a server only receives the tenants it serves (the multi-server form
 * of an in-process event emitter). Each message is handed over once, with every member.
 */
export class TenantChannelHub<TMember> {
  private readonly members = new Map<string, Set<TMember>>();
  private readonly tenantOfChannel = new Map<string, string>();
  private readonly subscribing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly subscriber: Redis,
    private readonly channelOf: (tenantId: string) => string,
    deliver: (members: ReadonlySet<TMember>, message: Buffer) => void,
  ) {
    subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      const tenantId = this.tenantOfChannel.get(channel.toString());
      const members = tenantId === undefined ? undefined : this.members.get(tenantId);
      if (members && members.size > 0) deliver(members, message);
    });
  }

  /** Adds a subscriber; resolves once the tenant's channel is subscribed, so nothing published after misses it. */
  async add(tenantId: string, member: TMember): Promise<void> {
    let set = this.members.get(tenantId);
    if (!set) {
      set = new Set();
      this.members.set(tenantId, set);
      const channel = this.channelOf(tenantId);
      this.tenantOfChannel.set(channel, tenantId);
      this.subscribing.set(tenantId, this.subscriber.subscribe(channel));
    }
    set.add(member);
    await this.subscribing.get(tenantId);
  }

  remove(tenantId: string, member: TMember): void {
    const set = this.members.get(tenantId);
    if (!set?.delete(member) || set.size > 0) return;
    this.members.delete(tenantId);
    this.subscribing.delete(tenantId);
    const channel = this.channelOf(tenantId);
    this.tenantOfChannel.delete(channel);
    this.subscriber.unsubscribe(channel).catch(() => {});
  }

  get size(): number {
    let total = 0;
    for (const set of this.members.values()) total += set.size;
    return total;
  }

  /** Every subscriber of every tenant, e.g. for a heartbeat. */
  *all(): Iterable<TMember> {
    for (const set of this.members.values()) yield* set;
  }
}
