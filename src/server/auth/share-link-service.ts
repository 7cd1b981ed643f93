import type { PrismaClient } from "../../generated/prisma/client";
import { shareLinkPath } from "../../shared/share-link";
import { notFound, PulseError, rateLimited } from "../errors";
import { KeyedRateLimit } from "../http/keyed-rate-limit";
import { newSecretId, type Session } from "./auth-service";
import type { RevocationPublisher } from "./revocation-channel";
import type { TokenSigner } from "./token-signer";

export interface ShareLinkOptions {
  /** The longest a link may live; asking for longer is a BAD_REQUEST naming the field. */
  maxTtlSeconds: number;
  /**
   * Views of the shared run (a subscription's snapshot, `share.run`, a page of output) all of
   * one link's viewers may have per second together, per process (bursts up to twice this).
   */
  viewsPerSecond?: number;
}

/** Default of `ShareLinkOptions.viewsPerSecond`: a crowd opening a link at once is served within seconds. */
export const SHARE_VIEWS_PER_SECOND = 20;

export interface CreatedShareLink {
  shareId: string;
  /** The bearer token of the link: `connectionParams.token` on the WebSocket, or `Authorization: Bearer` over HTTP. */
  token: string;
  /** The link's address on the dashboard's origin, token in the fragment (see `shareLinkPath`). */
  path: string;
  expiresAt: string;
}

export interface LiveShareLink {
  shareId: string;
  /** The email of the member who made it; null once that member is gone. */
  createdBy: string | null;
  createdAt: string;
  expiresAt: string;
}

/**
 * Read-only share links: a signed, expiring token naming one run of one tenant, backed by a
 * database row so the tenant can revoke it. The token opens the `share.*` procedures for
 * that run and nothing else.
 */
export class ShareLinkService {
  /**
   * Each view carries up to 64 Ki characters of output, built and sent for that viewer: one
   * link's viewers, from however many addresses, get a bounded share of the process between
   * them, and the tenant's own users and other tenants keep the rest.
   */
  private readonly views: KeyedRateLimit;

  constructor(
    private readonly db: PrismaClient,
    private readonly signer: TokenSigner,
    readonly options: ShareLinkOptions,
    /** Tells every process, so the link's viewers end at once wherever they watch. */
    private readonly revocations?: RevocationPublisher,
  ) {
    this.views = new KeyedRateLimit(options.viewsPerSecond ?? SHARE_VIEWS_PER_SECOND);
  }

  /** Spends one of the link's views: 0 when it had one, else the seconds to wait (nothing spent). */
  spendView(shareId: string): number {
    return this.views.take(shareId);
  }

  /** TOO_MANY_REQUESTS, saying when to come back, for a link whose viewers spent its views (see `spendView`). */
  tooManyViews(retryAfter: number): PulseError {
    return rateLimited(
      `this share link's viewers may open at most ${this.views.perSecond} views of the run per second; retry in ${retryAfter} s`,
      retryAfter,
    );
  }

  /** A link to one of the caller's tenant's runs; another tenant's run is NOT_FOUND, like a missing one. */
  async create(
    session: Pick<Session, "tenantId" | "userId">,
    runId: string,
    ttlSeconds: number,
  ): Promise<CreatedShareLink> {
    if (ttlSeconds > this.options.maxTtlSeconds) {
      throw new PulseError("BAD_REQUEST", `expiresInMinutes: at most ${Math.floor(this.options.maxTtlSeconds / 60)}`);
    }
    const run = await this.db.agentRun.findFirst({
      where: { id: runId, tenantId: session.tenantId },
      select: { id: true },
    });
    if (!run) throw notFound("run");
    const ttl = ttlSeconds;
    const shareId = newSecretId();
    const { token, expiresAt } = await this.signer.sign("share", shareId, { tid: session.tenantId, rid: run.id }, ttl);
    await this.db.shareLink.create({
      data: { id: shareId, tenantId: session.tenantId, runId: run.id, createdById: session.userId, expiresAt },
    });
    return { shareId, token, path: shareLinkPath(token), expiresAt: expiresAt.toISOString() };
  }

  /**
   * The run's links that still work (neither revoked nor expired), newest first, with who
   * made each: their tokens are not kept, only what lets the tenant tell them apart and stop
   * them. Another tenant's run has none.
   */
  async list(session: Session, runId: string): Promise<LiveShareLink[]> {
    const links = await this.db.shareLink.findMany({
      where: { runId, tenantId: session.tenantId, revokedAt: null, expiresAt: { gt: new Date() } },
      orderBy: { createdAt: "desc" },
      select: { id: true, createdAt: true, expiresAt: true, createdBy: { select: { email: true } } },
    });
    return links.map((l) => ({
      shareId: l.id,
      createdBy: l.createdBy?.email ?? null,
      createdAt: l.createdAt.toISOString(),
      expiresAt: l.expiresAt.toISOString(),
    }));
  }

  /** Ends a link at once, over HTTP and for viewers already watching. */
  async revoke(session: Session, shareId: string): Promise<{ ok: true }> {
    const { count } = await this.db.shareLink.updateMany({
      where: { id: shareId, tenantId: session.tenantId, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    if (count === 0) throw notFound("share link");
    await this.revocations?.publish({ kind: "share", id: shareId });
    return { ok: true };
  }
}
