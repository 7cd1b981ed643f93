import { hash, verify } from "@node-rs/argon2";
import { jwtVerify, SignJWT } from "jose";
import type { PrismaClient } from "../../generated/prisma/client";
import { PulseError } from "../errors";

/** Who is calling, as proven by a verified token. The tenant comes from here and nowhere else. */
export interface Session {
  userId: string;
  tenantId: string;
  email: string;
}

export interface AuthOptions {
  secret: Uint8Array;
  sessionTtlSeconds: number;
  /** Lifetime of the token a browser fetches for its WebSocket's connectionParams. */
  socketTokenTtlSeconds?: number;
}

const ISSUER = "pulse";
const AUDIENCE_SESSION = "pulse:session";
const AUDIENCE_SOCKET = "pulse:socket";
const ALGORITHM = "HS256";

/**
 * Accounts and tokens. Passwords are hashed with argon2id; tokens are JWTs signed with
 * HS256 only (the algorithm is pinned on verification), with issuer, audience and expiry
 * checked.
 *
 * @see https://github.com/panva/jose/blob/main/docs/jwt/verify/functions/jwtVerify.md
 */
export class AuthService {
  constructor(
    private readonly db: PrismaClient,
    private readonly options: AuthOptions,
  ) {}

  /** Creates a tenant and its first user; the caller starts whatever a new tenant runs. */
  async register(input: { email: string; password: string; tenantName: string }): Promise<Session> {
    const email = input.email.trim().toLowerCase();
    const existing = await this.db.user.findUnique({ where: { email }, select: { id: true } });
    if (existing) throw new PulseError("CONFLICT", "email: an account with this email already exists");
    const passwordHash = await hash(input.password);
    const tenant = await this.db.tenant.create({
      data: { name: input.tenantName.trim(), users: { create: { email, passwordHash } } },
      include: { users: true },
    });
    const user = tenant.users[0]!;
    return { userId: user.id, tenantId: tenant.id, email };
  }

  /** Same answer for an unknown email and a wrong password, so accounts cannot be probed. */
  async login(input: { email: string; password: string }): Promise<Session> {
    const email = input.email.trim().toLowerCase();
    const user = await this.db.user.findUnique({ where: { email } });
    const valid = user ? await verify(user.passwordHash, input.password) : await hash(input.password).then(() => false);
    if (!user || !valid) throw new PulseError("UNAUTHORIZED", "wrong email or password");
    return { userId: user.id, tenantId: user.tenantId, email };
  }

  async ensureUser(input: { email: string; password: string; tenantName: string }): Promise<{ session: Session; created: boolean }> {
    const email = input.email.trim().toLowerCase();
    const user = await this.db.user.findUnique({ where: { email } });
    if (user) return { session: { userId: user.id, tenantId: user.tenantId, email }, created: false };
    return { session: await this.register(input), created: true };
  }

  issueSessionToken(session: Session): Promise<string> {
    return this.sign(session, AUDIENCE_SESSION, this.options.sessionTtlSeconds);
  }

  /** A short-lived token for the WebSocket: the session cookie is httpOnly, so scripts ask for this. */
  issueSocketToken(session: Session): Promise<string> {
    return this.sign(session, AUDIENCE_SOCKET, this.options.socketTokenTtlSeconds ?? 300);
  }

  /** The session a token proves, or null for anything invalid, expired or for another audience. */
  async verify(token: string | undefined | null, audiences: "session" | "socket-or-session" = "session"): Promise<Session | null> {
    if (!token || token.length > 4096) return null;
    try {
      const { payload } = await jwtVerify(token, this.options.secret, {
        algorithms: [ALGORITHM],
        issuer: ISSUER,
        audience: audiences === "session" ? AUDIENCE_SESSION : [AUDIENCE_SESSION, AUDIENCE_SOCKET],
        requiredClaims: ["exp", "sub"],
      });
      const tenantId = payload.tid;
      const email = payload.email;
      if (typeof payload.sub !== "string" || typeof tenantId !== "string" || typeof email !== "string") return null;
      return { userId: payload.sub, tenantId, email };
    } catch {
      return null;
    }
  }

  private sign(session: Session, audience: string, ttlSeconds: number): Promise<string> {
    return new SignJWT({ tid: session.tenantId, email: session.email })
      .setProtectedHeader({ alg: ALGORITHM })
      .setSubject(session.userId)
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(`${ttlSeconds}s`)
      .sign(this.options.secret);
  }
}
