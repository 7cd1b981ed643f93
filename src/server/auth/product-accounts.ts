import { Prisma, type PrismaClient } from "../../generated/prisma/client";
import { PulseError } from "../errors";
import { normalizeEmail, type AuthService, type SessionAccess } from "./auth-service";
import type { ShareLinkService } from "./share-link-service";

/** A tenant of the embedding product, named by the product's own id. */
export interface ProductTenant {
  id: string;
  name?: string | undefined;
}

/** A user of the embedding product, named by the product's own id, unique within its tenant. */
export interface ProductUser {
  id: string;
  email?: string | undefined;
}

export interface MintRequest {
  tenant: ProductTenant;
  user: ProductUser;
  /** `read` watches and reads; `write` also runs, cancels, retries and approves. Ignored with `runId`. */
  access: SessionAccess;
  /** Scope the token to this one run (read-only, `share.*` procedures). */
  runId?: string | undefined;
  ttlSeconds: number;
}

export interface MintedToken {
  token: string;
  /** `tenant`: the `agent.*`/`context.*` procedures of the tenant; `run`: the `share.*` procedures of one run. */
  scope: "tenant" | "run";
  access: SessionAccess;
  expiresAt: string;
  tenantId: string;
  userId: string;
}

export interface ProductAccountsOptions {
  /** Tokens live at least this long (longer than the WebSocket's refresh lead). */
  minTtlSeconds: number;
  maxTtlSeconds: number;
}

/**
 * Tenants and users of a product that embeds Pulse, kept by the product's own ids, and the
 * short-lived tokens its backend mints for them (the admin API). A minted token opens a
 * session of its own lifetime: it ends by expiry (there is no per-token revocation), or at
 * once when its user is removed.
 */
export class ProductAccounts {
  constructor(
    private readonly db: PrismaClient,
    private readonly auth: AuthService,
    private readonly shares: ShareLinkService,
    readonly options: ProductAccountsOptions,
  ) {}

  /** Creates the tenant, or renames it when `name` is given; such tenants never start the setup chain by themselves. */
  upsertTenant(tenant: ProductTenant): Promise<{ tenantId: string; externalId: string; name: string }> {
    return retryOnRace(async () => {
      const row = await this.db.tenant.upsert({
        where: { externalId: tenant.id },
        create: { externalId: tenant.id, name: tenant.name ?? tenant.id },
        update: tenant.name === undefined ? {} : { name: tenant.name },
        select: { id: true, name: true },
      });
      return { tenantId: row.id, externalId: tenant.id, name: row.name };
    });
  }

  /** Creates the user in the tenant (the tenant's other users stay), or updates its email; CONFLICT for an email another user has. */
  async upsertUser(
    tenantId: string,
    user: ProductUser,
  ): Promise<{ userId: string; externalId: string; email: string | null }> {
    const email = user.email === undefined ? undefined : normalizeEmail(user.email);
    try {
      return await retryOnRace(async () => {
        const row = await this.db.user.upsert({
          where: { tenantId_externalId: { tenantId, externalId: user.id } },
          create: { tenantId, externalId: user.id, email: email ?? null },
          update: email === undefined ? {} : { email },
          select: { id: true, email: true },
        });
        return { userId: row.id, externalId: user.id, email: row.email };
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new PulseError("CONFLICT", "user.email: another user has this email");
      throw error;
    }
  }

  /** Upserts the tenant and the user, then signs a token for them: the tenant's, or one run's. */
  async mint(request: MintRequest): Promise<MintedToken> {
    const { minTtlSeconds, maxTtlSeconds } = this.options;
    if (request.ttlSeconds < minTtlSeconds || request.ttlSeconds > maxTtlSeconds) {
      throw new PulseError("BAD_REQUEST", `ttlSeconds: must be between ${minTtlSeconds} and ${maxTtlSeconds}`);
    }
    const { tenantId } = await this.upsertTenant(request.tenant);
    const { userId, email } = await this.upsertUser(tenantId, request.user);
    if (request.runId !== undefined) {
      const link = await this.shares.create({ tenantId, userId }, request.runId, request.ttlSeconds);
      return { token: link.token, scope: "run", access: "read", expiresAt: link.expiresAt, tenantId, userId };
    }
    const session = await this.auth.openSession(
      { userId, tenantId, email: email ?? "" },
      { access: request.access, ttlSeconds: request.ttlSeconds },
    );
    const token = await this.auth.issueSessionToken(session, request.ttlSeconds);
    const expiresAt = new Date(Date.now() + request.ttlSeconds * 1000).toISOString();
    return { token, scope: "tenant", access: request.access, expiresAt, tenantId, userId };
  }
}

function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2002";
}

/** Two upserts of the same new id race to insert; the loser's second try finds the winner's row. */
async function retryOnRace<T>(upsert: () => Promise<T>): Promise<T> {
  try {
    return await upsert();
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    return upsert();
  }
}
