import { describe, expect, it } from "vitest";
import { EnvError, parseEnv } from "../env";

/** The metrics settings of `env.ts`: defaults, parsing, and messages that never echo the token. */
describe("metrics settings", () => {
  it("default to /metrics on, no token and no worker metrics port", () => {
    const env = parseEnv({});
    expect(env.METRICS_ENABLED).toBe(true);
    expect(env.METRICS_TOKEN).toBeUndefined();
    expect(env.METRICS_PUBLIC).toBe(false);
    expect(env.METRICS_PORT).toBeUndefined();
  });

  it("parse a flag, a token and a port", () => {
    const env = parseEnv({ METRICS_ENABLED: "false", METRICS_TOKEN: "a-long-enough-token-1234", METRICS_PORT: "9464" });
    expect(env.METRICS_ENABLED).toBe(false);
    expect(env.METRICS_TOKEN).toBe("a-long-enough-token-1234");
    expect(env.METRICS_PORT).toBe(9464);
  });

  it("name the variable and the problem for bad values, without repeating the token", () => {
    const attempt = () =>
      parseEnv({ METRICS_ENABLED: "sometimes", METRICS_TOKEN: "short-secret", METRICS_PORT: "70000" });
    expect(attempt).toThrow(EnvError);
    const message = (() => {
      try {
        attempt();
        return "";
      } catch (error) {
        return (error as Error).message;
      }
    })();
    expect(message).toContain('METRICS_ENABLED: must be true or false (got "sometimes")');
    expect(message).toContain("METRICS_TOKEN: must be at least 16 characters (got 12 characters, not shown)");
    expect(message).toContain('METRICS_PORT: must be at most 65535 (got "70000")');
    expect(message).not.toContain("short-secret");
    expect(() => parseEnv({ METRICS_PORT: "abc" })).toThrow('METRICS_PORT: must be a number (got "abc")');
    expect(() => parseEnv({ METRICS_TOKEN: "has a space in the middle" })).toThrow(
      "METRICS_TOKEN: must not contain spaces",
    );
  });

  it("hide a database URL's password in an error message", () => {
    expect(() => parseEnv({ DATABASE_URL: "mysql://pulse:hunter2@db:3306/pulse" })).toThrow(
      '(got "mysql://pulse:***@db:3306/pulse")',
    );
  });
});
