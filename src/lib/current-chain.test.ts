import { describe, expect, it } from "vitest";
import { chainByRole, chainShown, currentChain, otherChainRun } from "./current-chain";
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
    chainName: chainId ? "setup" : null,
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

  it("keeps the loaded chain while another chain's runs arrive, and names the newest of them for the server to judge", () => {
    const other = [
      run("d", "summarizer", "c2", "2026-01-02T09:00:00.000Z", "completed"),
      run("e", "reviewer", "c2", "2026-01-02T09:05:00.000Z", "active"),
    ];
    expect(currentChain(chain, other).map((r) => r.id)).toEqual(["a", "b", "c"]);
    expect(otherChainRun(chain, other)).toBe("e");
    expect(otherChainRun(chain, [...chain, run("m", "client-researcher", null, "2026-01-03T00:00:00.000Z")])).toBe(
      undefined,
    );
    expect(otherChainRun([], other)).toBe("e");
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

describe("chainShown", () => {
  const CHAINS = [
    { name: "setup", title: "Setup chain", roles: ROLES.map((r) => r.role), setup: true },
    { name: "digest", title: "Digest", roles: ["summarizer", "reviewer"], setup: false },
  ];
  const TITLES = [
    { role: "client-researcher", title: "Client researcher" },
    { role: "summarizer", title: "Summarizer" },
  ];
  const digestRun = (id: string, agentRole: string) => ({
    ...run(id, agentRole, "c9", "2026-01-02T00:00:00.000Z", "active"),
    chainName: "digest",
  });

  it("shows the chain its runs are of, with that chain's own title and roles in order, not the setup chain's", () => {
    expect(chainShown(CHAINS, TITLES, [digestRun("d1", "summarizer")])).toEqual({
      title: "Digest",
      roles: [
        { role: "summarizer", title: "Summarizer" },
        { role: "reviewer", title: "reviewer" },
      ],
    });
  });

  it("shows the setup chain before any chain ran, and for chain runs from before names were kept", () => {
    const setup = chainShown(CHAINS, TITLES, []);
    expect(setup?.title).toBe("Setup chain");
    expect(setup?.roles.map((r) => r.role)).toEqual(ROLES.map((r) => r.role));
    const unnamed = { ...run("o1", "client-researcher", "c1", "2026-01-01T00:00:00.000Z"), chainName: null };
    expect(chainShown(CHAINS, TITLES, [unnamed])?.title).toBe("Setup chain");
  });

  it("shows a chain the deployment no longer has by its name and its runs' roles; nothing when there is no chain at all", () => {
    const gone = [
      { ...digestRun("g1", "fetcher"), chainName: "nightly" },
      { ...digestRun("g2", "indexer"), chainName: "nightly" },
    ];
    expect(chainShown(CHAINS, TITLES, gone)).toEqual({
      title: "nightly",
      roles: [
        { role: "fetcher", title: "fetcher" },
        { role: "indexer", title: "indexer" },
      ],
    });
    expect(chainShown([], TITLES, [])).toBeNull();
  });
});
