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

  it("turns flags and numbers into their types", () => {
    const env = parseEnv({ PULSE_WORKERS: "false", PORT: "8080", DEMO_SPEED: "0.05" });
    expect(env.PULSE_WORKERS).toBe(false);
    expect(env.PORT).toBe(8080);
    expect(env.DEMO_SPEED).toBe(0.05);
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
