import { describe, expect, it } from "vitest";
import { infoField, serverProblem, versionBelow } from "./redis";

/** INFO's `server` and `cluster` sections as a server of `version` would answer. */
const info = (version: string, clusterEnabled: 0 | 1) =>
  `# Server\r\nredis_version:${version}\r\nredis_mode:${clusterEnabled ? "cluster" : "standalone"}\r\nos:Linux\r\n\r\n# Cluster\r\ncluster_enabled:${clusterEnabled}\r\n`;

describe("the start-up check of the Redis server", () => {
  it("reads INFO fields whatever the line ends", () => {
    expect(infoField(info("7.2.4", 0), "redis_version")).toBe("7.2.4");
    expect(infoField(info("7.2.4", 1), "cluster_enabled")).toBe("1");
    expect(infoField(info("7.2.4", 1), "missing")).toBeUndefined();
  });

  it("compares versions part by part", () => {
    expect(versionBelow("6.2.14", "7.0.0")).toBe(true);
    expect(versionBelow("7.0.0", "7.0.0")).toBe(false);
    expect(versionBelow("7.0.15", "7.0.0")).toBe(false);
    expect(versionBelow("10.0.0", "7.0.0")).toBe(false);
    expect(versionBelow("7", "7.0.0")).toBe(false);
  });

  it("refuses a Redis older than 7 in one line that names the server and the version", () => {
    expect(serverProblem(info("6.2.14", 0), "redis.internal:6379", false)).toBe(
      "redis.internal:6379 runs Redis 6.2.14: Pulse needs Redis 7.0.0 or newer",
    );
    expect(serverProblem(info("6.0.9", 1), "10.0.0.3:7000", true)).toBe(
      "10.0.0.3:7000 runs Redis 6.0.9: Pulse needs Redis 7.0.0 or newer",
    );
    expect(serverProblem("# Server\r\nos:Linux\r\n", "proxy:6379", false)).toMatch(
      /^proxy:6379 did not report its version/,
    );
  });

  it("tells a standalone client pointed at a cluster node to set REDIS_CLUSTER_NODES, and the reverse", () => {
    expect(serverProblem(info("7.2.4", 1), "127.0.0.1:7000", false)).toBe(
      "REDIS_URL points at a Redis Cluster node (127.0.0.1:7000); set REDIS_CLUSTER_NODES to the cluster's nodes instead",
    );
    expect(serverProblem(info("7.2.4", 0), "127.0.0.1:6379", true)).toBe(
      "REDIS_CLUSTER_NODES lists 127.0.0.1:6379, which is not in cluster mode; set REDIS_URL for a standalone Redis",
    );
  });

  it("accepts Redis 7 of the kind the configuration names", () => {
    expect(serverProblem(info("7.0.15", 0), "127.0.0.1:6379", false)).toBeNull();
    expect(serverProblem(info("8.0.2", 1), "127.0.0.1:7000", true)).toBeNull();
  });
});
