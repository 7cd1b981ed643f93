import { createHash } from "node:crypto";
import type { RedisClient } from "../redis";
import { rateLimited } from "../errors";
import { normalizeEmail } from "./auth-service";

export interface LoginThrottleOptions {
  /** Sign-in attempts one account may see per window, from anywhere. */
  maxPerAccount: number;
  /** Sign-in and registration attempts one IP address may make per window. */
  maxPerIp: number;
  windowSeconds: number;
}

/** Counts one more attempt and returns the count and the seconds left in its window. */
const COUNT_ATTEMPT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

/**
 * Limits password guessing: attempts per account and per IP address in a fixed window,
 * counted in Redis so every replica shares the count. An attempt is counted before the
 * password is checked, so hashing cost cannot be spent past the limit; a successful
 * sign-in clears its account's count.
 */
export class LoginThrottle {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly options: LoginThrottleOptions,
  ) {}

  /** Counts a sign-in attempt; TOO_MANY_REQUESTS once the account or the address is over its limit. */
  async attempt(email: string, ip: string | undefined): Promise<void> {
    const checks: Promise<void>[] = [this.count(this.accountKey(email), this.options.maxPerAccount)];
    if (ip) checks.push(this.count(this.ipKey(ip), this.options.maxPerIp));
    await Promise.all(checks);
  }

  /** Counts a registration against its address only (there is no account yet). */
  async attemptFromIp(ip: string | undefined): Promise<void> {
    if (ip) await this.count(this.ipKey(ip), this.options.maxPerIp);
  }

  async succeeded(email: string): Promise<void> {
    await this.redis.del(this.accountKey(email));
  }

  private async count(key: string, max: number): Promise<void> {
    const [count, ttl] = (await this.redis.eval(COUNT_ATTEMPT, 1, key, this.options.windowSeconds)) as [number, number];
    if (count > max) {
      const minutes = Math.max(1, Math.ceil(ttl / 60));
      throw rateLimited(
        `too many sign-in attempts; try again in ${minutes} minute${minutes === 1 ? "" : "s"}`,
        Math.max(1, ttl),
      );
    }
  }

  /** Hashed, so Redis holds no email addresses. */
  private accountKey(email: string): string {
    const digest = createHash("sha256").update(normalizeEmail(email)).digest("base64url");
    return `${this.prefix}:login:account:${digest}`;
  }

  private ipKey(ip: string): string {
    return `${this.prefix}:login:ip:${ip}`;
  }
}
