import { describe, expect, it } from "vitest";
import { chainByRole, currentChain } from "./current-chain";
import type { RunView } from "./trpc/types";

const ROLES = [{ role: "client-researcher" }, { role: "competitor-researcher" }, { role: "context-file-writer" }];

function run(
  id: string,
  agentRole: string,
  chainId: string | null,
  queuedAt: string,
  status: RunView["status"] = "completed",
): RunView {
  return {
    id,
    tenantId: "t",
    agentRole,
    queue: "agents",
    jobId: id,
    chainId,
    status,
    phase: null,
    progress: status === "completed" ? 100 : 0,
    message: null,
    error: null,
    attempt: 1,
    willRetry: false,
    nextAgent: null,
    seq: 1,
    queuedAt,
    startedAt: null,
    completedAt: null,
    failedAt: null,
    cancelledAt: null,
    updatedAt: queuedAt,
    steps: [],
  } as RunView;
}

const chain = [
  run("a", "client-researcher", "c1", "2026-01-01T10:00:00.000Z"),
  run("b", "competitor-researcher", "c1", "2026-01-01T10:01:00.000Z"),
  run("c", "context-file-writer", "c1", "2026-01-01T10:02:00.000Z"),
];

describe("currentChain", () => {
  it("keeps the loaded chain whatever ran by hand since, with each run as fresh as the feed has it", () => {
    const byHand = Array.from({ length: 31 }, (_, i) =>
      run(`m${i}`, "client-researcher", null, `2026-01-01T11:${String(i).padStart(2, "0")}:00.000Z`),
    );
    // The feed knows the writer again (its events arrive without a chainId) and a manual run of the first role.
    const live = [
      ...byHand,
      { ...run("c", "context-file-writer", null, "2026-01-01T10:02:00.000Z"), message: "fresh" },
    ];
    const current = currentChain(chain, live);
    expect(current.map((r) => r.id)).toEqual(["a", "b", "c"]);
    expect(current[2]).toMatchObject({ message: "fresh", chainId: "c1" });
    expect(chainByRole(ROLES, current).map((r) => r.run?.status)).toEqual(["completed", "completed", "completed"]);
  });

  it("moves to a chain the feed saw start after the page loaded", () => {
    const next = run("d", "client-researcher", "c2", "2026-01-02T09:00:00.000Z", "active");
    const current = currentChain(chain, [next]);
    expect(current.map((r) => r.id)).toEqual(["d"]);
    expect(chainByRole(ROLES, current).map((r) => r.run?.status)).toEqual(["active", undefined, undefined]);
  });

  it("takes a chain's later runs from the feed when the page loaded before they were queued", () => {
    const current = currentChain(
      [chain[0]!],
      [run("b", "competitor-researcher", "c1", "2026-01-01T10:01:00.000Z", "active")],
    );
    expect(chainByRole(ROLES, current).map((r) => r.run?.status)).toEqual(["completed", "active", undefined]);
  });

  it("is empty for a tenant that never ran a chain, until one starts", () => {
    expect(currentChain([], [run("m", "client-researcher", null, "2026-01-01T10:00:00.000Z")])).toEqual([]);
  });
});
