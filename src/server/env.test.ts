import { describe, expect, it } from "vitest";
import { EnvError, parseEnv } from "./env";

describe("parseEnv", () => {
  it("gives a working configuration with nothing set", () => {
    const env = parseEnv({});
    expect(env.PORT).toBe(3000);
    expect(env.DATABASE_URL).toBeUndefined();
    expect(env.REDIS_URL).toBeUndefined();
    expect(env.PULSE_WORKERS).toBe(true);
    expect(env.EVENT_RETENTION_HOURS).toBe(24);
    expect(env.EVENT_RETENTION_MIN_EVENTS).toBe(10_000);
    expect(env.LOG_RETENTION_DAYS).toBe(30);
  });

  it("treats empty strings as unset", () => {
    expect(parseEnv({ REDIS_URL: "", PORT: "" }).PORT).toBe(3000);
  });

  it("names the variable and the problem for a bad value", () => {
    const attempt = () => parseEnv({ PORT: "abc", REDIS_URL: "http://x", PULSE_WORKERS: "maybe" });
    expect(attempt).toThrow(EnvError);
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('PORT: must be a number (got "abc")');
      expect(message).toContain("REDIS_URL: must start with redis:// or rediss://");
      expect(message).toContain("PULSE_WORKERS: must be true or false");
    }
  });

  it("asks a production deployment for its Redis instead of starting a private one", () => {
    expect(() => parseEnv({ NODE_ENV: "production" })).toThrow(
      "REDIS_URL: is required when NODE_ENV=production, or REDIS_CLUSTER_NODES (a private redis-server is for a local install only)",
    );
    expect(parseEnv({ NODE_ENV: "production", REDIS_URL: "redis://redis.internal:6379" }).REDIS_URL).toBe("redis://redis.internal:6379");
    expect(parseEnv({}).NODE_ENV).toBeUndefined();
  });

  it("turns flags and numbers into their types", () => {
    const env = parseEnv({ PULSE_WORKERS: "false", PORT: "8080", DEMO_SPEED: "0.05" });
    expect(env.PULSE_WORKERS).toBe(false);
    expect(env.PORT).toBe(8080);
    expect(env.DEMO_SPEED).toBe(0.05);
  });
});

describe("security settings", () => {
  it("default to the limits docs/SECURITY.md describes, and parse lists of origins and roles", () => {
    const env = parseEnv({});
    expect(env.ALLOWED_ORIGINS).toEqual([]);
    expect(env.WS_MAX_PAYLOAD_BYTES).toBe(64 * 1024);
    expect(env.SOCKET_TOKEN_TTL_SECONDS).toBe(300);
    expect(env.LOGIN_MAX_ATTEMPTS_PER_ACCOUNT).toBe(10);
    const set = parseEnv({ ALLOWED_ORIGINS: "https://pulse.example.com, http://localhost:3000", EXTERNAL_AGENT_ROLES: "py-agent,go-agent" });
    expect(set.ALLOWED_ORIGINS).toEqual(["https://pulse.example.com", "http://localhost:3000"]);
    expect(set.EXTERNAL_AGENT_ROLES).toEqual(["py-agent", "go-agent"]);
  });

  it("name the variable for an origin with a path, a bad role, or a refresh lead not below the token's lifetime", () => {
    const attempt = () => parseEnv({ ALLOWED_ORIGINS: "https://pulse.example.com/app", EXTERNAL_AGENT_ROLES: "Py Agent", SOCKET_TOKEN_TTL_SECONDS: "20" });
    expect(attempt).toThrow(EnvError);
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain("ALLOWED_ORIGINS: must list origins like https://pulse.example.com (scheme, host and port only) (item 1)");
      expect(message).toContain("EXTERNAL_AGENT_ROLES: must list roles in lowercase letters, digits and dashes (item 1)");
      expect(message).toContain("WS_TOKEN_REFRESH_LEAD_SECONDS: must be less than SOCKET_TOKEN_TTL_SECONDS");
    }
  });
});

describe(".env.example", () => {
  it("documents every variable the schema reads", async () => {
    const { readFile } = await import("node:fs/promises");
    const { envSchema } = await import("./env");
    const example = await readFile(new URL("../../.env.example", import.meta.url), "utf8");
    const missing = Object.keys(envSchema.shape).filter((name) => !new RegExp(`^#? ?${name}=`, "m").test(example));
    expect(missing).toEqual([]);
  });
});
