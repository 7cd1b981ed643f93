import type { webcrypto } from "node:crypto";
import { jwtVerify, SignJWT } from "jose";

/**
 * What a token may be used for; each kind is its own JWT audience, so a token issued for
 * one purpose is rejected everywhere else (a share link is no session, a report token
 * opens no WebSocket).
 */
export type TokenKind = "session" | "socket" | "share" | "report";

const AUDIENCES: Record<TokenKind, string> = {
  session: "pulse:session",
  socket: "pulse:socket",
  share: "pulse:share",
  report: "pulse:report",
};
const KINDS = new Map(Object.entries(AUDIENCES).map(([kind, audience]) => [audience, kind as TokenKind]));

const ISSUER = "pulse";
/** The only algorithm signed or accepted: verification never trusts the token's own `alg`. */
export const TOKEN_ALGORITHM = "HS256";
/** Longer than any token Pulse issues; anything bigger is rejected before it is parsed. */
export const MAX_TOKEN_LENGTH = 4096;

export interface VerifiedToken {
  kind: TokenKind;
  subject: string;
  /** String claims only: everything Pulse puts in a token is an id or an email. */
  claims: Record<string, string>;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/**
 * Signs and verifies Pulse's JWTs with one HMAC key. The algorithm is pinned, and issuer,
 * audience, expiry, issued-at and the `typ` header are all checked on every verification.
 *
 * @see https://github.com/panva/jose/blob/main/docs/jwt/verify/functions/jwtVerify.md
 */
export class TokenSigner {
  /**
   * The secret as a WebCrypto key, imported once: given raw bytes, jose imports a key on
   * every call, which was a third of each WebSocket sign-in's token check.
   */
  private key?: Promise<webcrypto.CryptoKey>;

  constructor(private readonly secret: Uint8Array) {}

  private cryptoKey(): Promise<webcrypto.CryptoKey> {
    this.key ??= crypto.subtle.importKey("raw", new Uint8Array(this.secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    return this.key;
  }

  async sign(
    kind: TokenKind,
    subject: string,
    claims: Record<string, string>,
    ttlSeconds: number,
  ): Promise<{ token: string; expiresAt: Date }> {
    const issuedAt = Math.floor(Date.now() / 1000);
    const expiresAt = issuedAt + Math.max(1, Math.floor(ttlSeconds));
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: "JWT" })
      .setSubject(subject)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCES[kind])
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(await this.cryptoKey());
    return { token, expiresAt: new Date(expiresAt * 1000) };
  }

  /** The token's kind, subject and claims, or null for anything forged, expired, malformed or of another kind. */
  async verify(token: string | undefined | null, kinds: readonly TokenKind[]): Promise<VerifiedToken | null> {
    if (!token || token.length > MAX_TOKEN_LENGTH || kinds.length === 0) return null;
    try {
      const { payload } = await jwtVerify(token, await this.cryptoKey(), {
        algorithms: [TOKEN_ALGORITHM],
        issuer: ISSUER,
        audience: kinds.map((k) => AUDIENCES[k]),
        typ: "JWT",
        requiredClaims: ["exp", "iat", "sub", "aud"],
      });
      const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      if (audience.length !== 1) return null;
      const kind = KINDS.get(audience[0]!);
      if (!kind || !kinds.includes(kind) || typeof payload.sub !== "string" || typeof payload.exp !== "number")
        return null;
      const claims: Record<string, string> = {};
      for (const [key, value] of Object.entries(payload)) {
        if (typeof value === "string") claims[key] = value;
      }
      return { kind, subject: payload.sub, claims, expiresAt: payload.exp * 1000 };
    } catch {
      return null;
    }
  }
}
