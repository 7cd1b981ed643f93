import { describe, expect, it } from "vitest";
import {
  droppedOutputNotice,
  formatDuration,
  formatRelative,
  formatTime,
  QUIET_AFTER_MS,
  quietNotice,
  runDuration,
  runMessage,
  statusAnnouncement,
  stepStatus,
} from "./format";

describe("formatDuration", () => {
  it("reads as seconds, minutes or hours, dropping zero parts", () => {
    expect(formatDuration(42_400)).toBe("42 s");
    expect(formatDuration(185_000)).toBe("3 min 5 s");
    expect(formatDuration(180_000)).toBe("3 min");
    expect(formatDuration(3_720_000)).toBe("1 h 2 min");
    expect(formatDuration(-5)).toBe("0 s");
  });
});

describe("runDuration", () => {
  const queuedAt = "2026-12-04T12:00:00.000Z";
  const none = { completedAt: null, failedAt: null, cancelledAt: null };
  const at = (s: number) => new Date(Date.parse(queuedAt) + s * 1000).toISOString();

  it("counts a finished run from being queued to its end, whichever attempt finished it", () => {
    // Queued at 0, first attempt failed at 40 s, the second started at 70 s and completed at 100 s.
    const completed = { ...none, status: "completed" as const, queuedAt, failedAt: at(40), completedAt: at(100) };
    expect(runDuration(completed, null)).toEqual({ ms: 100_000, ended: true });
    expect(runDuration({ ...none, status: "failed", queuedAt, failedAt: at(65) }, null)).toEqual({
      ms: 65_000,
      ended: true,
    });
    expect(runDuration({ ...none, status: "cancelled", queuedAt, cancelledAt: at(5) }, Date.now())).toEqual({
      ms: 5_000,
      ended: true,
    });
  });

  it("goes on counting from being queued while the run waits for its retry or runs its next attempt", () => {
    const waiting = { ...none, status: "queued" as const, queuedAt, failedAt: at(40) };
    expect(runDuration(waiting, Date.parse(at(50)))).toEqual({ ms: 50_000, ended: false });
    expect(runDuration({ ...waiting, status: "active" }, Date.parse(at(90)))).toEqual({ ms: 90_000, ended: false });
    expect(runDuration(waiting, null)).toBeNull();
  });
});

describe("runMessage", () => {
  it("gives phase and message while a run is queued or running", () => {
    expect(runMessage({ status: "active", phase: "running", message: "Reading filings", willRetry: false })).toBe(
      "running · Reading filings",
    );
    expect(runMessage({ status: "queued", phase: null, message: null, willRetry: false })).toBe("");
  });

  it("gives an ended run's or attempt's last message as such, without a phase that would contradict its status", () => {
    for (const status of ["completed", "failed", "cancelled"] as const) {
      expect(runMessage({ status, phase: "running", message: "Reading filings", willRetry: false })).toBe(
        "Last message: Reading filings",
      );
    }
    // Failed, waiting in the queue for its retry.
    expect(runMessage({ status: "queued", phase: "running", message: "Reading filings", willRetry: true })).toBe(
      "Last message: Reading filings",
    );
    expect(runMessage({ status: "completed", phase: "completing", message: null, willRetry: false })).toBe("");
  });
});

describe("stepStatus", () => {
  it("shows a started step as running only while its attempt runs", () => {
    expect(stepStatus({ status: "started", attempt: 2 }, { status: "active", attempt: 2 })).toBe("started");
    // The run was cancelled or failed mid-step, or a later attempt took over.
    expect(stepStatus({ status: "started", attempt: 2 }, { status: "cancelled", attempt: 2 })).toBe("interrupted");
    expect(stepStatus({ status: "started", attempt: 2 }, { status: "failed", attempt: 2 })).toBe("interrupted");
    expect(stepStatus({ status: "started", attempt: 1 }, { status: "active", attempt: 2 })).toBe("interrupted");
    expect(stepStatus({ status: "started", attempt: 1 }, { status: "queued", attempt: 1 })).toBe("interrupted");
  });

  it("keeps a finished step's own status", () => {
    expect(stepStatus({ status: "completed", attempt: 1 }, { status: "cancelled", attempt: 1 })).toBe("completed");
    expect(stepStatus({ status: "failed", attempt: 1 }, { status: "active", attempt: 2 })).toBe("failed");
  });
});

describe("droppedOutputNotice", () => {
  it("says how many of the output's first characters the run no longer keeps", () => {
    expect(droppedOutputNotice(34_464)).toBe("[… 34464 earlier characters dropped]");
  });
});

describe("formatTime", () => {
  it("renders the same UTC time on every machine for the server's render and the browser's first", () => {
    expect(formatTime("2026-03-01T07:05:09.000Z", "UTC")).toBe("07:05:09 UTC");
  });
});

describe("quietNotice", () => {
  const at = Date.parse("2026-03-01T07:00:00.000Z");
  const run = { status: "active" as const, updatedAt: "2026-03-01T07:00:00.000Z" };
  it("says an active run's worker may have stopped once it has been quiet past the threshold", () => {
    expect(quietNotice(run, at + QUIET_AFTER_MS)).toBeNull();
    expect(quietNotice(run, at + 42_000)).toBe("No update for 42 s — the worker may have stopped");
    expect(quietNotice(run, at + 42_000, "agent")).toBe("No update for 42 s — the agent may have stopped");
  });
  it("says nothing of a run that is not running, or before the page knows the time", () => {
    expect(quietNotice({ ...run, status: "queued" }, at + 60_000)).toBeNull();
    expect(quietNotice(run, null)).toBeNull();
  });
});

describe("statusAnnouncement", () => {
  const base = { status: "active" as const, willRetry: false, error: null };
  it("is the status word, with the error when the run failed, and never its progress", () => {
    expect(statusAnnouncement("Client researcher", base)).toBe("Client researcher running");
    expect(statusAnnouncement("Client researcher", { ...base, status: "completed" })).toBe(
      "Client researcher completed",
    );
    expect(statusAnnouncement("Client researcher", { ...base, status: "failed", error: "timed out" })).toBe(
      "Client researcher failed: timed out",
    );
    expect(
      statusAnnouncement("Client researcher", { ...base, status: "queued", willRetry: true, error: "timed out" }),
    ).toBe("Client researcher: attempt failed, retrying: timed out");
    expect(statusAnnouncement("Outside", { ...base, status: "queued" }, true)).toBe("Outside waiting for the agent");
  });
});

describe("formatRelative", () => {
  const now = Date.parse("2026-12-04T12:00:00Z");
  it("says how long ago a moment was, in the largest unit that fits", () => {
    expect(
      [0, 9_000, 42_000, 125_000, 3 * 3_600_000, 47 * 3_600_000, 5 * 86_400_000].map((ago) =>
        formatRelative(now - ago, now),
      ),
    ).toEqual(["just now", "just now", "42 s ago", "2 min ago", "3 h ago", "47 h ago", "5 d ago"]);
  });
  it("calls a moment a little ahead of the clock (another machine's) just now", () => {
    expect(formatRelative(now + 5_000, now)).toBe("just now");
  });
});
