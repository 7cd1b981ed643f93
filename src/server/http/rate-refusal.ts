import type http from "node:http";
import { TRPCError } from "@trpc/server";
import { rateLimited } from "../errors";
import { errorShapeOf } from "../trpc/trpc";
import type { CallRefusal } from "./http-call-gate";

/**
 * How long a call refused for a rate (its address's, its tenant's, its share link's) waits
 * for its 429. A client that calls again as soon as it is answered (a loop on `share.run`,
 * say) then costs the process one refusal a second per connection rather than one per
 * round trip, which at thousands a second took the CPU other tenants' events needed;
 * nginx's `limit_req` slows excess requests down the same way. A client that honours
 * Retry-After waits at least as long anyway.
 */
const RATE_REFUSAL_HOLD_MS = 1_000;

/** Sets `Retry-After` and resolves after `RATE_REFUSAL_HOLD_MS`, or as soon as the client is gone. */
export function holdRateRefusal(res: http.ServerResponse, retryAfterSeconds: number): Promise<void> {
  res.setHeader("Retry-After", String(retryAfterSeconds));
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(hold);
      res.off("close", done);
      resolve();
    };
    const hold = setTimeout(done, RATE_REFUSAL_HOLD_MS);
    res.once("close", done);
  });
}

/** Answers a refused call; one refused for its address's rate after `holdRateRefusal`. */
export function refuseCallInTime(res: http.ServerResponse, refusal: CallRefusal): void {
  if (refusal.status !== 429) return refuseCall(res, refusal);
  void holdRateRefusal(res, refusal.retryAfter ?? 1).then(() => {
    if (!res.destroyed && !res.writableEnded) refuseCall(res, refusal);
  });
}

/**
 * Refuses a tRPC call over HTTP at the edge with the body tRPC itself would send (`errorShapeOf`:
 * a JSON-RPC code, and `data` from the router's errorFormatter), so a tRPC client reads
 * `error.data.code` and `error.data.retryAfterSeconds` whether tRPC or the edge refused it.
 */
function refuseCall(res: http.ServerResponse, refusal: CallRefusal): void {
  const { code, message, retryAfter } = refusal;
  if (retryAfter !== undefined) res.setHeader("Retry-After", String(retryAfter));
  const cause = retryAfter === undefined ? undefined : rateLimited(message, retryAfter);
  const shape = errorShapeOf(new TRPCError({ code, message, cause }));
  res.writeHead(refusal.status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify({ error: shape }));
}
