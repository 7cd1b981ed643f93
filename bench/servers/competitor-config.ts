import type { ListenOptions } from "node:net";
import { TokenSigner } from "../../src/server/auth/token-signer";
import { LISTEN_BACKLOG } from "../../src/server/env";

/**
 * Where a competitor server listens: a free loopback port, with Pulse's listen backlog, so a
 * wave of connections finds the same room in the kernel whichever server it reaches (but
 * Socket.IO's storm server, which does better with Node's default: see there).
 */
export const COMPETITOR_LISTEN: ListenOptions = { port: 0, host: "127.0.0.1", backlog: LISTEN_BACKLOG };

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
