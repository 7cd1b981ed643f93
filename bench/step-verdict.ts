import type { BenchPlan } from "./bench-plan";
import type { DisturbedRun } from "./bench-result";
import type { StepProgress, StepSummary } from "./delivery-ledger";
import type { CpuShares } from "./machine-cpu";
import type { StepOutcome } from "./open-loop";

/** What a step's verdict is read from: the clients' counts, the publisher's outcome, the machine's CPU. */
export interface VerdictInput {
  summary: StepSummary;
  outcome: StepOutcome;
  cpu: CpuShares;
}

/** Why a step failed (undefined: it passed), and whether timing alone failed it. */
export function failureOf(m: VerdictInput, bound: number): { reason: string; timingOnly: boolean } | undefined {
  const s = m.summary;
  // Timing: late, not wrong; a step that failed only on these may have been slowed by others.
  const reasons: { text: string; timing?: true }[] = [];
  if (m.outcome.failed > 0)
    reasons.push({ text: `${m.outcome.failed} publishes failed (${m.outcome.errors[0] ?? ""})` });
  if (m.outcome.dropped > 0) reasons.push({ text: `${m.outcome.dropped} events not accepted by the publisher` });
  if (m.outcome.errors.length > 0 && m.outcome.failed === 0) reasons.push({ text: m.outcome.errors[0]! });
  if (s.missing > 0) reasons.push({ text: `${s.missing} deliveries missing after the drain`, timing: true });
  if (s.duplicates > 0) reasons.push({ text: `${s.duplicates} duplicates` });
  if (s.foreign > 0) reasons.push({ text: `${s.foreign} events of another tenant` });
  if (s.resyncs > 0) reasons.push({ text: `${s.resyncs} resyncs` });
  if (s.misordered > 0) reasons.push({ text: `${s.misordered} out of order` });
  if (s.closed > 0) reasons.push({ text: `${s.closed} connections closed` });
  if (s.latency.p99 > bound) reasons.push({ text: `p99 ${s.latency.p99} ms > ${bound} ms`, timing: true });
  if (reasons.length === 0) return undefined;
  return { reason: reasons.map((r) => r.text).join("; "), timingOnly: reasons.every((r) => r.timing) };
}

/**
 * Whether a step still running has failed beyond doubt: more than 1% of all the deliveries it
 * is to make (`expected`) already came later than the bound, so its p99 can only end above
 * it, however the rest go.
 */
export const cannotPass = ({ late, expected }: Pick<StepProgress, "late" | "expected">): boolean =>
  late * 100 > expected;

/** Other work's and the hypervisor's cores during a step, when they were enough to disturb it. */
export function disturbance(m: Pick<VerdictInput, "cpu">, plan: Pick<BenchPlan, "disturbance">): string | undefined {
  const { otherCores, stolenCores } = m.cpu;
  return otherCores + stolenCores >= plan.disturbance.cores
    ? `others ${otherCores.toFixed(2)} cores, stolen ${stolenCores.toFixed(2)} cores`
    : undefined;
}

/** A step's last measurement, why it failed (if it did), and the disturbed attempts set aside before it. */
export interface StepVerdict<M extends VerdictInput> {
  measured: M;
  failed?: { reason: string; timingOnly: boolean };
  disturbedRuns: DisturbedRun[];
}

/**
 * Measures a step, and measures it again while it failed on timing alone with the machine
 * disturbed (see `disturbance`), at most `plan.disturbance.reruns` more times. A failure of
 * correctness, or one on a quiet machine, stands at once. `beforeRerun` runs before each new
 * attempt (to let the machine settle), told why the last one was set aside.
 */
export async function judgeStep<M extends VerdictInput>(
  measure: () => Promise<M>,
  plan: Pick<BenchPlan, "disturbance" | "p99BoundMs">,
  beforeRerun: (failure: string, disturbed: string) => Promise<void>,
): Promise<StepVerdict<M>> {
  const disturbedRuns: DisturbedRun[] = [];
  let measured = await measure();
  let failed = failureOf(measured, plan.p99BoundMs);
  while (failed?.timingOnly && disturbedRuns.length < plan.disturbance.reruns) {
    const disturbed = disturbance(measured, plan);
    if (!disturbed) break;
    disturbedRuns.push({
      otherCpuCores: measured.cpu.otherCores,
      stolenCpuCores: measured.cpu.stolenCores,
      failure: failed.reason,
    });
    await beforeRerun(failed.reason, disturbed);
    measured = await measure();
    failed = failureOf(measured, plan.p99BoundMs);
  }
  return { measured, ...(failed ? { failed } : {}), disturbedRuns };
}
