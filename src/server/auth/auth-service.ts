import { randomBytes } from "node:crypto";
import { hash, verify } from "@node-rs/argon2";
import { Prisma, type PrismaClient } from "../../generated/prisma/client";
import { PulseError } from "../errors";
import { TRANSACTION_LIMITS } from "../db";
import type { SqlClient } from "../sql";
import { passwordProblem } from "./password-policy";
import type { RevocationPublisher } from "./revocation-channel";
import { SessionLookups } from "./session-lookups";
import { TokenSigner, type TokenKind } from "./token-signer";

/**
 * What a session's tokens may do: `write` starts, cancels, retries and approves (a signed-in
 * user, or a token minted with it); `read` only reads and watches (FORBIDDEN otherwise).
 */
export type SessionAccess = "read" | "write";

/** Who is calling, as proven by a verified token. The tenant comes from here and nowhere else. */
export interface Session {
  userId: string;
  tenantId: string;
  /** Empty for a product's user known by its external id only (admin API). */
  email: string;
  /** The database session the token names; logging out revokes it. */
  sessionId: string;
  access: SessionAccess;
}

/** A user and the tenant it belongs to. */
export type Account = Omit<Session, "sessionId" | "access">;

/** Emails are compared as typed, less surrounding spaces and case. */
export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/** What a share link grants: watching one run of one tenant, nothing else. */
export interface ShareGrant {
  shareId: string;
  tenantId: string;
  runId: string;
}

/** What a run's report token grants: publishing that run's events over HTTP. */
export interface ReportGrant {
  tenantId: string;
  runId: string;
}

/**
 * A verified caller with the moment its token stops being valid (`expiresAt`) and the moment
 * its session or share link itself ends (`endsAt`), both in ms since the epoch: a socket
 * token may outlive the session it was issued from, and the session's end is known at once.
 */
export type Principal =
  | { kind: "user"; session: Session; expiresAt: number; endsAt: number }
  | { kind: "share"; share: ShareGrant; expiresAt: number; endsAt: number };

export interface AuthOptions {
  secret: Uint8Array;
  sessionTtlSeconds: number;
  /** Lifetime of the token a browser fetches for its WebSocket's connectionParams. */
  socketTokenTtlSeconds?: number;
  /** Lifetime of the token an external agent reports a run's events with. */
  reportTokenTtlSeconds?: number;
}

/** A random id people cannot guess, for sessions and share links. */
export const newSecretId = () => randomBytes(18).toString("base64url");

/**
 * Accounts, sessions and tokens. Passwords are hashed with argon2id; tokens are JWTs signed
 * by `TokenSigner` (HS256 pinned; issuer, audience, expiry checked). Session and socket
 * tokens also name a database session, and share tokens a share link, both checked on
 * every verification, so logging out, removing a user or revoking a link takes effect at
 * once over HTTP; open WebSockets end when the revocation's message reaches their process
 * (see `RevocationChannel`, `ConnectionRegistry`).
 */
export class AuthService {
  private readonly signer: TokenSigner;
  /** Session rows for token checks, read together when many are asked at once. */
  private readonly sessions: SessionLookups;

  private readonly db: PrismaClient;

  constructor(
    database: { db: PrismaClient; sql: SqlClient },
    private readonly options: AuthOptions,
    /** Tells every process's open connections; a service built without one (tests that only sign tokens) tells none. */
    private readonly revocations?: RevocationPublisher,
  ) {
    this.db = database.db;
    this.signer = new TokenSigner(options.secret);
    this.sessions = new SessionLookups(database.sql);
  }

  get tokens(): TokenSigner {
    return this.signer;
  }

  /**
   * Creates a tenant and its first user, signed in; the caller starts the tenant's setup
   * chain (`startTenantSetup`). BAD_REQUEST for a weak password, CONFLICT for an email
   * already taken.
   */
  async register(input: { email: string; password: string; tenantName: string }): Promise<Session> {
    return this.openSession(await this.createAccount(input));
  }

  /** Same answer for an unknown email and a wrong password, so accounts cannot be probed. */
  async login(input: { email: string; password: string }): Promise<Session> {
    const email = normalizeEmail(input.email);
    const user = await this.db.user.findUnique({ where: { email } });
    // A user without a password (created by the admin API) is answered like an unknown email.
    const valid = user?.passwordHash
      ? await verify(user.passwordHash, input.password)
      : await hash(input.password).then(() => false);
    if (!user || !valid) throw new PulseError("UNAUTHORIZED", "wrong email or password");
    return this.openSession({ userId: user.id, tenantId: user.tenantId, email });
  }

  /**
   * The account with this email, created with its tenant when there is none: what demo
   * seeding calls from every process that starts, any number at once.
   */
  async ensureAccount(input: {
    email: string;
    password: string;
    tenantName: string;
  }): Promise<Account & { created: boolean }> {
    const found = await this.findAccount(input.email);
    if (found) return { ...found, created: false };
    try {
      return { ...(await this.createAccount(input)), created: true };
    } catch (error) {
      // Another process created it between the look-up and the insert.
      const raced =
        error instanceof PulseError && error.code === "CONFLICT" ? await this.findAccount(input.email) : null;
      if (!raced) throw error;
      return { ...raced, created: false };
    }
  }

  private async findAccount(rawEmail: string): Promise<Account | null> {
    const email = normalizeEmail(rawEmail);
    const user = await this.db.user.findUnique({ where: { email }, select: { id: true, tenantId: true } });
    return user ? { userId: user.id, tenantId: user.tenantId, email } : null;
  }

  /**
   * The tenant and its first user in one transaction, so a failure leaves neither (the
   * context file is reset when its setup starts). The email's unique index decides between
   * registrations racing for it: the losers get CONFLICT.
   */
  private async createAccount(input: { email: string; password: string; tenantName: string }): Promise<Account> {
    const problem = passwordProblem(input.password);
    if (problem) throw new PulseError("BAD_REQUEST", `password: ${problem}`);
    const email = normalizeEmail(input.email);
    const passwordHash = await hash(input.password);
    try {
      const tenant = await this.db.$transaction(
        (tx) =>
          tx.tenant.create({
            data: { name: input.tenantName.trim(), users: { create: { email, passwordHash } } },
            select: { id: true, users: { select: { id: true } } },
          }),
        TRANSACTION_LIMITS,
      );
      return { userId: tenant.users[0]!.id, tenantId: tenant.id, email };
    } catch (error) {
      if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2002") {
        throw new PulseError("CONFLICT", "email: an account with this email already exists");
      }
      throw error;
    }
  }

  /**
   * Records a new session for a user; its tokens are valid until it expires or is revoked.
   * Sessions minted for a product's user (admin API) pass their own access and lifetime.
   */
  async openSession(user: Account, options: { access?: SessionAccess; ttlSeconds?: number } = {}): Promise<Session> {
    const id = newSecretId();
    const ttlSeconds = options.ttlSeconds ?? this.options.sessionTtlSeconds;
    await this.db.session.create({
      data: { id, userId: user.userId, tenantId: user.tenantId, expiresAt: new Date(Date.now() + ttlSeconds * 1000) },
    });
    return { ...user, sessionId: id, access: options.access ?? "write" };
  }

  /** Logs a session out everywhere: its session and socket tokens stop verifying, and its open connections end. */
  async revokeSession(sessionId: string): Promise<void> {
    await this.db.session.updateMany({ where: { id: sessionId, revokedAt: null }, data: { revokedAt: new Date() } });
    await this.revocations?.publish({ kind: "session", id: sessionId });
  }

  /**
   * Removes a user (their sessions go with them) and ends their open connections. A user
   * deleted in the database directly ends at the next safety check instead (SESSION_CHECK_INTERVAL_MS).
   */
  async removeUser(userId: string): Promise<void> {
    await this.db.user.deleteMany({ where: { id: userId } });
    await this.revocations?.publish({ kind: "user", id: userId });
  }

  async issueSessionToken(session: Session, ttlSeconds = this.options.sessionTtlSeconds): Promise<string> {
    return (await this.signer.sign("session", session.userId, userClaims(session), ttlSeconds)).token;
  }

  /** A short-lived token for the WebSocket: the session cookie is httpOnly, so scripts ask for this. */
  issueSocketToken(session: Session): Promise<{ token: string; expiresAt: Date }> {
    return this.signer.sign("socket", session.userId, userClaims(session), this.options.socketTokenTtlSeconds ?? 300);
  }

  /** The token an external agent reports one run's events with; it names the run and its tenant only. */
  async issueReportToken(grant: ReportGrant): Promise<string> {
    return (
      await this.signer.sign(
        "report",
        grant.runId,
        { tid: grant.tenantId },
        this.options.reportTokenTtlSeconds ?? 86_400,
      )
    ).token;
  }

  /** The run and tenant a report token grants, or null for anything invalid or expired. */
  async verifyReportToken(token: string | undefined | null): Promise<ReportGrant | null> {
    const verified = await this.signer.verify(token, ["report"]);
    const tenantId = verified?.claims.tid;
    return verified && tenantId ? { tenantId, runId: verified.subject } : null;
  }

  /**
   * The session a token proves, or null for anything invalid, expired, revoked or for
   * another audience. Kept for callers that only deal with signed-in users.
   */
  async verify(
    token: string | undefined | null,
    audiences: "session" | "socket-or-session" = "session",
  ): Promise<Session | null> {
    const principal = await this.authenticate(token, audiences === "session" ? ["session"] : ["session", "socket"]);
    return principal?.kind === "user" ? principal.session : null;
  }

  /** Who a token proves: a signed-in user or a share-link viewer; null for anything else. */
  async authenticate(
    token: string | undefined | null,
    kinds: readonly Exclude<TokenKind, "report">[],
  ): Promise<Principal | null> {
    const verified = await this.signer.verify(token, kinds);
    if (!verified) return null;
    const now = new Date();
    const { tid, sid, email = "", rid, acc } = verified.claims;
    if (verified.kind === "share") {
      if (!tid || !rid) return null;
      const link = await this.db.shareLink.findFirst({
        where: { id: verified.subject, tenantId: tid, runId: rid, revokedAt: null, expiresAt: { gt: now } },
        select: { id: true, expiresAt: true },
      });
      if (!link) return null;
      return {
        kind: "share",
        share: { shareId: link.id, tenantId: tid, runId: rid },
        expiresAt: verified.expiresAt,
        endsAt: link.expiresAt.getTime(),
      };
    }
    if (!tid || !sid) return null;
    const session = await this.sessions.find(sid);
    if (!session || session.userId !== verified.subject || session.tenantId !== tid) return null;
    const user: Session = {
      userId: verified.subject,
      tenantId: tid,
      email,
      sessionId: sid,
      access: acc === "read" ? "read" : "write",
    };
    return { kind: "user", session: user, expiresAt: verified.expiresAt, endsAt: session.expiresAt.getTime() };
  }

  /**
   * Which of these sessions and share links are still valid, a query per thousand: the
   * registry's safety check, for revocations whose message a process missed.
   */
  async stillActive(ids: {
    sessionIds: string[];
    shareIds: string[];
  }): Promise<{ sessions: Set<string>; shares: Set<string> }> {
    const now = new Date();
    const sessions = new Set<string>();
    const shares = new Set<string>();
    for (const chunk of chunks(ids.sessionIds, 1_000)) {
      const rows = await this.db.session.findMany({
        where: { id: { in: chunk }, revokedAt: null, expiresAt: { gt: now } },
        select: { id: true },
      });
      for (const row of rows) sessions.add(row.id);
    }
    for (const chunk of chunks(ids.shareIds, 1_000)) {
      const rows = await this.db.shareLink.findMany({
        where: { id: { in: chunk }, revokedAt: null, expiresAt: { gt: now } },
        select: { id: true },
      });
      for (const row of rows) shares.add(row.id);
    }
    return { sessions, shares };
  }

  /** Deletes sessions and share links that expired more than a day ago. */
  async sweepExpired(now = Date.now()): Promise<number> {
    const before = new Date(now - 86_400_000);
    const [sessions, shares] = await Promise.all([
      this.db.session.deleteMany({ where: { expiresAt: { lt: before } } }),
      this.db.shareLink.deleteMany({ where: { expiresAt: { lt: before } } }),
    ]);
    return sessions.count + shares.count;
  }
}

/** A read-only session says so in its tokens (`acc`); tokens without the claim, every signed-in user's, may write. */
function userClaims(session: Session): Record<string, string> {
  return {
    tid: session.tenantId,
    sid: session.sessionId,
    ...(session.email ? { email: session.email } : {}),
    ...(session.access === "read" ? { acc: "read" } : {}),
  };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
