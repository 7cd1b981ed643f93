import { expect, test } from "vitest";
import { parseArgs, sizedPlan } from "./bench-options";
import { FULL_PLAN } from "./bench-plan";

test("--wave-clients and --storm-clients size those scenarios over the plan's tenants, and keep the docs from being written", () => {
  const args = parseArgs(["--scenarios=first-event,reconnect-storm", "--wave-clients=1000", "--storm-clients=2000"]);
  const plan = sizedPlan(FULL_PLAN, args);
  expect(plan.firstEvent.tenants * plan.firstEvent.subscribersPerTenant).toBe(1_000);
  expect(plan.reconnectStorm.tenants * plan.reconnectStorm.clientsPerTenant).toBe(2_000);
  expect(plan.reconnectStorm.missedPerTenant).toEqual(FULL_PLAN.reconnectStorm.missedPerTenant);
  expect(args.docs).toBe(false);
  expect(parseArgs(["--storm-clients=2000"]).docs).toBe(false);
});

test("without them the plan is the plan", () => {
  expect(sizedPlan(FULL_PLAN, parseArgs([]))).toEqual(FULL_PLAN);
  expect(() => parseArgs(["--storm-clients=many"])).toThrow(/not a positive number/);
});
