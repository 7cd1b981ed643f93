import { describe, expect, it } from "vitest";
import { configuredRedis } from "./bootstrap";
import { EnvError, parseEnv } from "./env";

describe("parseEnv", () => {
  it("gives a working configuration with nothing set", () => {
    const env = parseEnv({});
    expect(env.PORT).toBe(3000);
    expect(env.LISTEN_BACKLOG).toBe(4096);
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
    expect(parseEnv({ NODE_ENV: "production", REDIS_URL: "redis://redis.internal:6379" }).REDIS_URL).toBe(
      "redis://redis.internal:6379",
    );
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
    const set = parseEnv({
      ALLOWED_ORIGINS: "https://pulse.example.com, http://localhost:3000",
      EXTERNAL_AGENT_ROLES: "py-agent,go-agent",
    });
    expect(set.ALLOWED_ORIGINS).toEqual(["https://pulse.example.com", "http://localhost:3000"]);
    expect(set.EXTERNAL_AGENT_ROLES).toEqual(["py-agent", "go-agent"]);
  });

  it("give event streams caps of their own, by default the built-in ones", async () => {
    const { serverSecurity } = await import("./bootstrap");
    const { DEFAULT_SERVER_SECURITY } = await import("./http/server-security");
    expect(serverSecurity(parseEnv({})).sse).toEqual(DEFAULT_SERVER_SECURITY.sse);
    const set = serverSecurity(
      parseEnv({ SSE_MAX_STREAMS_PER_USER: "5", SSE_MAX_STREAMS_PER_IP: "7", SSE_MAX_STREAMS: "9" }),
    ).sse;
    expect(set).toMatchObject({ perUser: 5, perIp: 7, perProcess: 9, perTenant: 600 });
    expect(() => parseEnv({ SSE_MAX_VIEWERS_PER_IP: "0" })).toThrow(/SSE_MAX_VIEWERS_PER_IP/);
  });

  it("name the variable for an origin with a path, a bad role, or a refresh lead not below the token's lifetime", () => {
    const attempt = () =>
      parseEnv({
        ALLOWED_ORIGINS: "https://pulse.example.com/app",
        EXTERNAL_AGENT_ROLES: "Py Agent",
        SOCKET_TOKEN_TTL_SECONDS: "20",
      });
    expect(attempt).toThrow(EnvError);
    try {
      attempt();
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain(
        "ALLOWED_ORIGINS: must list origins like https://pulse.example.com (scheme, host and port only) (item 1)",
      );
      expect(message).toContain(
        "EXTERNAL_AGENT_ROLES: must list roles in lowercase letters, digits and dashes (item 1)",
      );
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

describe("Redis settings", () => {
  it("take a cluster's seed nodes, with TLS and credentials for every node", () => {
    const env = parseEnv({
      REDIS_CLUSTER_NODES: "10.0.0.1:7000, redis-2.internal:7001,10.0.0.3:7002",
      REDIS_CLUSTER_TLS: "true",
      REDIS_CLUSTER_USERNAME: "pulse",
      REDIS_CLUSTER_PASSWORD: "s3cret-password",
    });
    expect(env.REDIS_CLUSTER_NODES).toEqual(["10.0.0.1:7000", "redis-2.internal:7001", "10.0.0.3:7002"]);
    expect(env.REDIS_CLUSTER_TLS).toBe(true);
    expect(configuredRedis(env)).toEqual({
      cluster: {
        nodes: [
          { host: "10.0.0.1", port: 7000 },
          { host: "redis-2.internal", port: 7001 },
          { host: "10.0.0.3", port: 7002 },
        ],
        tls: true,
        username: "pulse",
        password: "s3cret-password",
      },
    });
  });

  it("mean one standalone Redis with REDIS_URL, and a private one with neither", () => {
    expect(configuredRedis(parseEnv({ REDIS_URL: "rediss://:pw@redis.internal:6380" }))).toEqual({
      url: "rediss://:pw@redis.internal:6380",
    });
    expect(configuredRedis(parseEnv({}))).toBeUndefined();
    expect(parseEnv({}).REDIS_CLUSTER_NODES).toEqual([]);
  });

  it("refuse REDIS_URL and REDIS_CLUSTER_NODES together", () => {
    expect(() => parseEnv({ REDIS_URL: "redis://a:6379", REDIS_CLUSTER_NODES: "b:7000" })).toThrow(
      "REDIS_CLUSTER_NODES: cannot be set with REDIS_URL: REDIS_URL is one standalone Redis, REDIS_CLUSTER_NODES a cluster's nodes; set one",
    );
  });

  it("name a node that is not host:port, and never show the cluster password", () => {
    expect(() => parseEnv({ REDIS_CLUSTER_NODES: "10.0.0.1:7000,10.0.0.2" })).toThrow(
      "REDIS_CLUSTER_NODES: must list nodes as host:port (item 2)",
    );
    expect(() => parseEnv({ REDIS_CLUSTER_NODES: "redis://10.0.0.1:7000" })).toThrow("must list nodes as host:port");
    expect(() => parseEnv({ REDIS_CLUSTER_NODES: "10.0.0.1:70000" })).toThrow("port from 1 to 65535");
    try {
      parseEnv({ REDIS_CLUSTER_PASSWORD: "hunter2-hunter2" });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toContain("REDIS_CLUSTER_PASSWORD: applies to REDIS_CLUSTER_NODES only");
      expect((error as Error).message).not.toContain("hunter2");
    }
  });

  it("keep the cluster's TLS and credentials to the cluster", () => {
    expect(() => parseEnv({ REDIS_CLUSTER_TLS: "true" })).toThrow(
      "REDIS_CLUSTER_TLS: applies to REDIS_CLUSTER_NODES only (for REDIS_URL, use rediss://)",
    );
    expect(() => parseEnv({ REDIS_URL: "redis://a:6379", REDIS_CLUSTER_USERNAME: "pulse" })).toThrow(
      "REDIS_CLUSTER_USERNAME: applies to REDIS_CLUSTER_NODES only",
    );
  });

  it("let a production deployment name a cluster instead of REDIS_URL", () => {
    expect(parseEnv({ NODE_ENV: "production", REDIS_CLUSTER_NODES: "10.0.0.1:7000" }).REDIS_CLUSTER_NODES).toEqual([
      "10.0.0.1:7000",
    ]);
  });
});
