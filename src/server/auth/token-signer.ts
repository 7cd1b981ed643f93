import { createHmac, createSecretKey, timingSafeEqual, type KeyObject, type webcrypto } from "node:crypto";
import { SignJWT } from "jose";

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
 * Signing goes through jose. Verifying, which every WebSocket sign-in and every call with a
 * bearer token does (a deploy's reconnect wave: thousands at once), is `verifiedClaims`:
 * node:crypto's HMAC, synchronous, about 7 µs a token here where jose's WebCrypto job took
 * 60–90 µs of the server's one thread (seen in the first-event wave's CPU profile).
 *
 * @see https://www.rfc-editor.org/rfc/rfc7519#section-7.2
 */
export class TokenSigner {
  /**
   * The secret as a WebCrypto key, imported once: given raw bytes, jose imports a key on
   * every call, which was a third of each WebSocket sign-in's token check.
   */
  private key?: Promise<webcrypto.CryptoKey>;
  /** The same secret for node:crypto's HMAC. */
  private readonly hmacKey: KeyObject;

  constructor(private readonly secret: Uint8Array) {
    this.hmacKey = createSecretKey(secret);
  }

  private cryptoKey(): Promise<webcrypto.CryptoKey> {
    this.key ??= crypto.subtle.importKey("raw", new Uint8Array(this.secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
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
    const payload = verifiedClaims(token, this.hmacKey, Math.floor(Date.now() / 1000));
    if (!payload) return null;
    const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (audience.length !== 1 || typeof audience[0] !== "string") return null;
    const kind = KINDS.get(audience[0]);
    if (!kind || !kinds.includes(kind)) return null;
    const claims: Record<string, string> = {};
    for (const [key, value] of Object.entries(payload)) {
      if (typeof value === "string") claims[key] = value;
    }
    return { kind, subject: payload.sub, claims, expiresAt: payload.exp * 1000 };
  }
}

/** A token's claims once `verifiedClaims` has checked them: these three are known to be present. */
type VerifiedClaims = Record<string, unknown> & { sub: string; exp: number; aud: string | unknown[] };

/** A JWS's three base64url parts; an HS256 signature is 32 bytes, 43 characters unpadded. */
const COMPACT_JWS = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/;

/**
 * The claims of a compact JWS that `key` signed with HS256 and that hold at `now` (seconds
 * since the epoch), or null. Checked as jose's `jwtVerify` checks with Pulse's options, and
 * stricter where only Pulse writes tokens: the protected header is exactly `alg` HS256 and
 * `typ` JWT (no `crit`, no key id, no other algorithm however named); a signature has one
 * spelling, compared in constant time before anything of the token is parsed; `iss`, `aud`,
 * `sub`, `iat` and `exp` are required, `exp` after `now`, and any `nbf` not after it.
 */
export function verifiedClaims(token: string, key: KeyObject, now: number): VerifiedClaims | null {
  const parts = COMPACT_JWS.exec(token);
  if (!parts) return null;
  const [, header = "", body = "", signature = ""] = parts;
  // Compared as text: the one base64url spelling of the HMAC (a decoder would also take the
  // spellings that differ only in the last character's two unused bits).
  const expected = Buffer.from(createHmac("sha256", key).update(`${header}.${body}`).digest("base64url"));
  if (!timingSafeEqual(Buffer.from(signature), expected)) return null;
  const protectedHeader = parseJsonObject(header);
  if (
    !protectedHeader ||
    Object.keys(protectedHeader).length !== 2 ||
    protectedHeader.alg !== TOKEN_ALGORITHM ||
    protectedHeader.typ !== "JWT"
  )
    return null;
  const claims = parseJsonObject(body);
  if (!claims || claims.iss !== ISSUER) return null;
  const { sub, aud, iat, exp, nbf } = claims;
  if (typeof sub !== "string" || (typeof aud !== "string" && !Array.isArray(aud))) return null;
  if (typeof iat !== "number" || typeof exp !== "number" || exp <= now) return null;
  if (nbf !== undefined && (typeof nbf !== "number" || nbf > now)) return null;
  // The checks above are what the type says.
  return claims as VerifiedClaims;
}

/** A base64url part's JSON object, or null for anything else (text that is not JSON, an array, a number). */
function parseJsonObject(part: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
