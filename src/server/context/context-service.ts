import type { PrismaClient } from "../../generated/prisma/client";
import { PulseError } from "../errors";
import type { EventBus } from "../events/bus";
import { repairText } from "../validation";
import { readContextSnapshot, type ContextView } from "../events/snapshot";

/**
 * A tenant's context file and its status: pending → generating → completed → approved.
 * Every change of status is an event on the bus, so every open tab sees it.
 */
export class ContextService {
  constructor(private readonly deps: { db: PrismaClient; bus: EventBus }) {}

  async get(tenantId: string): Promise<ContextView | null> {
    return (await readContextSnapshot(this.deps.db, tenantId)).context;
  }

  /** A new setup starts the file over as pending (keeping the last content until replaced). */
  async reset(tenantId: string): Promise<void> {
    const current = await this.deps.db.contextFile.findUnique({ where: { tenantId }, select: { version: true } });
    await this.deps.bus.publish({
      type: "context:status_changed",
      tenantId,
      status: "pending",
      version: current?.version ?? 0,
    });
  }

  async markGenerating(tenantId: string): Promise<void> {
    const current = await this.deps.db.contextFile.findUnique({ where: { tenantId }, select: { version: true } });
    await this.deps.bus.publish({
      type: "context:status_changed",
      tenantId,
      status: "generating",
      version: current?.version ?? 0,
    });
  }

  /**
   * Stores newly written content as the next version and marks it completed, awaiting
   * approval. A U+0000 in it (model output) is stored as U+FFFD, as in every agent text.
   */
  async complete(tenantId: string, written: string): Promise<number> {
    const content = repairText(written);
    const file = await this.deps.db.contextFile.upsert({
      where: { tenantId },
      create: { tenantId, content, version: 1 },
      update: { content, version: { increment: 1 }, approvedById: null, approvedAt: null },
      select: { version: true },
    });
    await this.deps.bus.publish({
      type: "context:status_changed",
      tenantId,
      status: "completed",
      version: file.version,
    });
    return file.version;
  }

  /**
   * Approves the version the user saw. CONFLICT when the file has moved on since (a newer
   * version, or not completed), so nobody approves content they have not read; NOT_FOUND
   * for a version the file never had.
   */
  async approve(tenantId: string, userId: string, version: number): Promise<ContextView> {
    const approved = await this.deps.db.contextFile.updateMany({
      where: { tenantId, version, status: "completed" },
      data: { approvedById: userId, approvedAt: new Date() },
    });
    if (approved.count === 0) {
      const current = await this.get(tenantId);
      if (!current) throw new PulseError("NOT_FOUND", "context file not found");
      // A version this tenant's file never had (another tenant's, or a made-up one) is
      // NOT_FOUND; only an older version of its own is stale.
      if (version > current.version)
        throw new PulseError("NOT_FOUND", `version: the context file has no version ${version}`);
      throw new PulseError(
        "CONFLICT",
        current.version !== version
          ? `version: the context file is at version ${current.version}, not ${version}`
          : `the context file is ${current.status}, not completed`,
      );
    }
    await this.deps.bus.publish({ type: "context:status_changed", tenantId, status: "approved", version });
    return (await this.get(tenantId))!;
  }
}
