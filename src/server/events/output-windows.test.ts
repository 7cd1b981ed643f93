import { describe, expect, it } from "vitest";
import { OutputWindows } from "./output-windows";

const startedAt = new Date("2026-01-01T00:00:00Z");
const version = (id: string, outputLength: number, attempt = 1, started: Date | null = startedAt) => ({
  id,
  attempt,
  startedAt: started,
  outputLength,
});

describe("OutputWindows", () => {
  it("gives a window back only while the run's output has not grown", () => {
    const windows = new OutputWindows<string>();
    windows.remember(version("r", 100), "window at 100");
    expect(windows.get(version("r", 100))).toBe("window at 100");
    expect(windows.get(version("r", 101))).toBeUndefined();
    expect(windows.get(version("other", 100))).toBeUndefined();
  });

  it("never reuses a window across attempts or a restart of the same attempt, even at the same length", () => {
    const windows = new OutputWindows<string>();
    windows.remember(version("r", 100), "attempt 1");
    expect(windows.get(version("r", 100, 2))).toBeUndefined();
    expect(windows.get(version("r", 100, 1, new Date(startedAt.getTime() + 1)))).toBeUndefined();
    expect(windows.get(version("r", 100, 1, null))).toBeUndefined();
  });

  it("holds one window per run, the newest remembered", () => {
    const windows = new OutputWindows<string>();
    windows.remember(version("r", 100), "old");
    windows.remember(version("r", 200), "new");
    expect(windows.get(version("r", 100))).toBeUndefined();
    expect(windows.get(version("r", 200))).toBe("new");
  });

  it("holds at most its capacity, forgetting the run remembered longest ago", () => {
    const windows = new OutputWindows<string>(2);
    windows.remember(version("a", 1), "a");
    windows.remember(version("b", 1), "b");
    windows.remember(version("a", 2), "a again");
    windows.remember(version("c", 1), "c");
    expect(windows.get(version("b", 1))).toBeUndefined();
    expect(windows.get(version("a", 2))).toBe("a again");
    expect(windows.get(version("c", 1))).toBe("c");
  });
});
