import { describe, expect, it } from "vitest";
import { formatDuration, runMessage } from "./format";

describe("formatDuration", () => {
  it("reads as seconds, minutes or hours, dropping zero parts", () => {
    expect(formatDuration(42_400)).toBe("42 s");
    expect(formatDuration(185_000)).toBe("3 min 5 s");
    expect(formatDuration(180_000)).toBe("3 min");
    expect(formatDuration(3_720_000)).toBe("1 h 2 min");
    expect(formatDuration(-5)).toBe("0 s");
  });
});

describe("runMessage", () => {
  it("gives phase and message while a run is queued or running", () => {
    expect(runMessage({ status: "active", phase: "running", message: "Reading filings" })).toBe("running · Reading filings");
    expect(runMessage({ status: "queued", phase: null, message: null })).toBe("");
  });

  it("gives an ended run's last message as such, without a phase that would contradict its status", () => {
    for (const status of ["completed", "failed", "cancelled"] as const) {
      expect(runMessage({ status, phase: "running", message: "Reading filings" })).toBe("Last message: Reading filings");
    }
    expect(runMessage({ status: "completed", phase: "completing", message: null })).toBe("");
  });
});
