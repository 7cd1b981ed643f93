import { describe, expect, it } from "vitest";
import { FailureWindow } from "./failure-window";

describe("FailureWindow", () => {
  it("counts as failing after enough errors close together, and not after a success or once they are old", () => {
    const window = new FailureWindow(5, 10_000);
    for (let t = 0; t < 4; t++) window.failed(new Error("NOPERM"), t * 100);
    expect(window.failing(400)).toBeNull();
    window.failed(new Error("NOPERM refused"), 400);
    expect(window.failing(500)).toMatch(/^5\+ errors in the last 10 s, the latest: NOPERM refused$/);

    window.succeeded(600);
    expect(window.failing(700)).toBeNull();
    for (let t = 0; t < 5; t++) window.failed(new Error("OOM"), 1_000 + t);
    expect(window.failing(2_000)).not.toBeNull();
    // Errors stopped: once the oldest of the latest five is out of the window, it recovers.
    expect(window.failing(11_001)).toBeNull();
  });

  it("does not count errors spread thinner than its threshold per window", () => {
    const window = new FailureWindow(5, 10_000);
    for (let t = 0; t < 50; t++) window.failed(new Error("transient"), t * 5_000);
    expect(window.failing(49 * 5_000)).toBeNull();
  });
});
