import { describe, expect, it } from "vitest";
import type { AgentEventInput } from "../events/schema";
import { AttemptReports } from "./attempt-reports";

const log = (message: string) => ({ type: "agent:log", level: "info", message }) as AgentEventInput;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A bus whose publishes take longer the earlier they come, and fail for messages starting with "bad". */
function slowBus() {
  const published: string[] = [];
  let delay = 30;
  return {
    published,
    async publish(event: AgentEventInput) {
      const message = (event as { message: string }).message;
      await sleep((delay = Math.max(0, delay - 10)));
      if (message.startsWith("bad")) throw new Error(`refused ${message}`);
      published.push(message);
      return null;
    },
  };
}

describe("AttemptReports", () => {
  it("publishes in the order reports were made, however long each takes, and a failure stays its caller's", async () => {
    const bus = slowBus();
    const reports = new AttemptReports(bus);
    const results = ["one", "bad two", "three", "four"].map((m) => reports.publish(log(m)));
    await expect(results[1]).rejects.toThrow("refused bad two");
    await Promise.all([results[0], results[2], results[3]]);
    expect(bus.published).toEqual(["one", "three", "four"]);
  });

  it("settles once every call, and every call those started, has ended, failed ones included", async () => {
    const bus = slowBus();
    const reports = new AttemptReports(bus);
    // Left unawaited, as a careless agent would: neither may end up as an unhandled rejection.
    void reports.track(async () => {
      await reports.publish(log("outer"));
      void reports.track(() => reports.publish(log("inner")));
    });
    void reports.track(() => reports.publish(log("bad line")));
    await reports.settled();
    expect(bus.published).toEqual(["outer", "inner"]);
  });
});
