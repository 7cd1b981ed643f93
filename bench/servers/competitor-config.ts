import { TokenSigner } from "../../src/server/auth/token-signer";

/** What the orchestrator tells a competitor server at start. */
export interface CompetitorConfig {
  redisUrl: string;
  /** HMAC key of the bench's tokens (base64url). */
  secret: string;
}

/**
 * The competitors authenticate a connection the way seed 000 does (a signed JWT naming the
 * tenant, verified on connect), with Pulse's own signer, so connection set-up costs the same
 * kind of work in every design.
 */
export function tokenVerifier(config: CompetitorConfig): (token: unknown) => Promise<string | null> {
  const signer = new TokenSigner(Buffer.from(config.secret, "base64url"));
  return async (token) => {
    const verified = await signer.verify(typeof token === "string" ? token : undefined, ["socket"]);
    return verified?.claims.tid ?? null;
  };
}
