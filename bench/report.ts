import type { BenchResult, BenchSummary, IdleResult, ScenarioResult, StepResult, TargetCheck } from "./bench-result";
import type { LatencySummary } from "./delivery-ledger";
import { DESIGN_TITLES, SOCKET_IO_STREAMS_OPTIONS, type Design, type SocketIoAdapter } from "./workload";
import { FULL_PLAN } from "./bench-plan";
import { median } from "./statistics";

/**
 * Turns a run's figures into what people read: the summary (maximum sustainable rates,
 * latencies at equal load, the issue's targets met or not), text tables for stdout, an SVG
 * chart of latency against offered load, and docs/BENCHMARK.md.
 */

const COLORS: Record<Design, string> = {
  pulse: "#2563eb",
  "socket-io": "#dc2626",
  sse: "#16a34a",
  "ws-floor": "#6b7280",
};

function highestPassing(steps: StepResult[], design: Design): StepResult | undefined {
  return steps
    .filter((s) => s.design === design && s.passed)
    .sort((a, b) => b.offeredDeliveriesPerSecond - a.offeredDeliveriesPerSecond)[0];
}

/** The highest step index every one of `designs` passed. */
function commonStep(scenario: ScenarioResult, designs: Design[]): number | null {
  const passed = (design: Design) =>
    new Set(scenario.steps.filter((s) => s.design === design && s.passed).map((s) => s.step));
  const sets = designs.map(passed);
  const candidates = [...(sets[0] ?? [])].filter((step) => sets.every((set) => set.has(step)));
  return candidates.length ? Math.max(...candidates) : null;
}

function stepOf(scenario: ScenarioResult, design: Design, step: number): StepResult | undefined {
  return scenario.steps.find((s) => s.design === design && s.step === step);
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * What one pass of each scenario showed: each design's maximum, the latencies at the heaviest
 * load all passed, and the targets judged on that pass alone (for a run of one repetition;
 * over several, `summariseRepetitions` judges them at the worse end). A scenario the run
 * repeated is keyed and named per repetition (`scenarioRunLabel`).
 */
export function summarise(result: Pick<BenchResult, "designs" | "scenarios" | "idle">): BenchSummary {
  const summary: BenchSummary = { maxSustainable: {}, equalLoad: {}, targets: [] };
  const has = (design: Design) => result.designs.includes(design);
  for (const scenario of result.scenarios) {
    const label = scenarioRunLabel(scenario, result.scenarios);
    const max: BenchSummary["maxSustainable"][string] = {};
    for (const design of result.designs) {
      const best = highestPassing(scenario.steps, design);
      max[design] = best
        ? { deliveriesPerSecond: best.offeredDeliveriesPerSecond, atLeast: scenario.unsaturated.includes(design) }
        : null;
    }
    summary.maxSustainable[label] = max;
    const common = commonStep(scenario, result.designs);
    summary.equalLoad[label] =
      common === null
        ? null
        : {
            offeredDeliveriesPerSecond: stepOf(scenario, result.designs[0]!, common)!.offeredDeliveriesPerSecond,
            byDesign: Object.fromEntries(
              result.designs.map((design) => {
                const step = stepOf(scenario, design, common)!;
                return [design, { ...step.latency, serverCpuUsPerDelivery: step.serverCpuUsPerDelivery }];
              }),
            ),
          };

    if (has("pulse") && has("socket-io")) {
      const pulse = max.pulse;
      const sio = max["socket-io"];
      const floorMax = has("ws-floor") ? maxRatio(max["ws-floor"], sio) : undefined;
      summary.targets.push({
        name: `${label}: max sustainable deliveries/s, Pulse ÷ Socket.IO`,
        ...atLeastTarget(maxRatio(pulse, sio), 1.3),
        detail: `Pulse ${bound(pulse)}, Socket.IO ${bound(sio)}`,
        ...(floorMax === undefined ? {} : { floor: figure(floorMax) }),
      });
      summary.targets.push(...p99Targets(scenario, label));
    }
    if (has("pulse") && has("ws-floor")) {
      const pulse = max.pulse;
      const floor = max["ws-floor"];
      summary.targets.push({
        name: `${label}: max sustainable deliveries/s, Pulse ÷ floor`,
        ...atLeastTarget(maxRatio(pulse, floor), 0.5),
        detail: `Pulse ${bound(pulse)}, floor ${bound(floor)}`,
      });
    }
  }
  const idle = (design: Design) => largestIdle(result.idle, design);
  const pulseIdle = idle("pulse");
  const sioIdle = idle("socket-io");
  if (pulseIdle && sioIdle) {
    const ratio = sioIdle.heapPerConnection > 0 ? pulseIdle.heapPerConnection / sioIdle.heapPerConnection : null;
    summary.targets.push({
      name: "heap per idle connection, Pulse ÷ Socket.IO",
      value: ratio === null ? null : round(ratio),
      target: "≤ 0.7",
      met: ratio === null ? null : ratio <= 0.7,
      detail: `Pulse ${fmtBytes(pulseIdle.heapPerConnection)}, Socket.IO ${fmtBytes(sioIdle.heapPerConnection)} per connection`,
    });
  }
  if (pulseIdle) {
    const held = pulseIdle.broadcast.missing === 0 && pulseIdle.broadcast.duplicates === 0 ? pulseIdle.ready : 0;
    summary.targets.push({
      name: "concurrent subscribers on one Pulse API process",
      value: held,
      target: "≥ 10,000",
      met: held >= 10_000,
      detail: `${pulseIdle.ready} of ${pulseIdle.connections} subscribed, server counted ${pulseIdle.serverConnections} connections; one event per tenant reached ${pulseIdle.broadcast.delivered} of ${pulseIdle.broadcast.expected} subscribers`,
    });
  }
  return summary;
}

/** A scenario's name, with its repetition when the run has several of it. */
function scenarioRunLabel(scenario: ScenarioResult, scenarios: readonly ScenarioResult[]): string {
  const repeated = scenarios.some((other) => other !== scenario && other.name === scenario.name);
  return repeated ? `${scenario.name} (repetition ${scenario.repetition + 1})` : scenario.name;
}

/**
 * Pulse's p99 over Socket.IO's at each comparison load of one pass (a fraction of the weaker
 * of their maxima): at most 1 wanted, as over the repetitions. A step either design failed
 * counts as not met for Pulse's and as no figure for Socket.IO's.
 */
function p99Targets(scenario: ScenarioResult, label: string): TargetCheck[] {
  const at = (design: Design, fraction: number) =>
    scenario.atLoads.find((s) => s.design === design && s.fraction === fraction);
  const fractions = [...new Set(scenario.atLoads.map((s) => s.fraction))].sort((a, b) => a - b);
  return fractions.map((fraction) => {
    const [p, s] = [at("pulse", fraction), at("socket-io", fraction)];
    const name = `${label}: p99 at ${Math.round(fraction * 100)}% of the weaker maximum, Pulse ÷ Socket.IO`;
    if (!p || !s || !s.passed || s.latency.p99 <= 0)
      return { name, value: null, target: "≤ 1", met: null, detail: "Socket.IO has no passing step at this load" };
    const load = `at ${fmtRate(p.offeredDeliveriesPerSecond)} deliveries/s`;
    if (!p.passed) return { name, value: null, target: "≤ 1", met: false, detail: `Pulse failed ${load}` };
    const value = round(p.latency.p99 / s.latency.p99);
    return {
      name,
      value,
      target: "≤ 1",
      met: value <= 1,
      detail: `${load}: Pulse ${fmtMs(p.latency.p99)} ms, Socket.IO ${fmtMs(s.latency.p99)} ms`,
    };
  });
}

/** The most connections any design's idle run was measured with: what the memory target is judged at. */
export function largestIdleSize(idle: readonly IdleResult[]): number {
  return Math.max(0, ...idle.map((i) => i.connections));
}

/** A design's idle measurement at `largestIdleSize` (the first, when idle runs repeat). */
export function largestIdle(idle: readonly IdleResult[], design: Design): IdleResult | undefined {
  const size = largestIdleSize(idle);
  return idle.find((i) => i.design === design && i.connections === size);
}

type MaxSustainable = { deliveriesPerSecond: number; atLeast: boolean } | null | undefined;

/**
 * One design's maximum over another's. A maximum the ladder never reached is only a lower
 * bound, and so is the ratio it is the numerator of; as the denominator it makes the ratio
 * an upper bound. Two such maxima bound nothing.
 */
function maxRatio(a: MaxSustainable, b: MaxSustainable): { value: number; bound?: "atLeast" | "atMost" } | null {
  if (!a || !b || (a.atLeast && b.atLeast)) return null;
  const value = a.deliveriesPerSecond / b.deliveriesPerSecond;
  return a.atLeast ? { value, bound: "atLeast" } : b.atLeast ? { value, bound: "atMost" } : { value };
}

/** A ratio as a target shows it: rounded, with its bound if it has one; null when there is none. */
function figure(ratio: ReturnType<typeof maxRatio>): { value: number | null; bound?: "atLeast" | "atMost" } {
  return ratio ? { value: round(ratio.value), ...(ratio.bound ? { bound: ratio.bound } : {}) } : { value: null };
}

/** A "ratio ≥ wanted" target: met, not met, or unknown when the bound points the wrong way. */
function atLeastTarget(
  ratio: ReturnType<typeof maxRatio>,
  wanted: number,
): Pick<TargetCheck, "value" | "bound" | "target" | "met"> {
  const target = `≥ ${wanted}`;
  if (!ratio) return { value: null, target, met: null };
  const { value, bound } = ratio;
  const met =
    bound === "atLeast"
      ? value >= wanted
        ? true
        : null
      : bound === "atMost"
        ? value < wanted
          ? false
          : null
        : value >= wanted;
  return { ...figure(ratio), target, met };
}

function bound(value: MaxSustainable): string {
  if (!value) return "none passed";
  return `${value.atLeast ? "≥ " : ""}${fmtRate(value.deliveriesPerSecond)}/s`;
}

export function fmtRate(value: number): string {
  if (value >= 1_000_000) return `${round(value / 1_000_000, 2)}M`;
  if (value >= 10_000) return `${Math.round(value / 1_000)}k`;
  if (value >= 1_000) return `${round(value / 1_000, 1)}k`;
  return String(Math.round(value));
}

export function fmtBytes(value: number): string {
  if (Math.abs(value) >= 1024 * 1024) return `${round(value / 1024 / 1024, 1)} MiB`;
  if (Math.abs(value) >= 1024) return `${round(value / 1024, 1)} KiB`;
  return `${Math.round(value)} B`;
}

/** A plain table: the first row is the header; numbers right-aligned. */
export function table(rows: (string | number)[][], markdown = false): string {
  const text = rows.map((row) => row.map(String));
  const widths = text[0]!.map((_, c) => Math.max(...text.map((row) => (row[c] ?? "").length)));
  const numeric = text[0]!.map((_, c) => text.slice(1).every((row) => /^[-–≥≤~\d.,%×kMiB /]*$/.test(row[c] ?? "")));
  const pad = (cell: string, c: number) => (numeric[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!));
  if (markdown) {
    const line = (row: string[]) => `| ${row.join(" | ")} |`;
    return [
      line(text[0]!),
      line(text[0]!.map((_, c) => (numeric[c] ? "---:" : "---"))),
      ...text.slice(1).map(line),
    ].join("\n");
  }
  return text
    .map(
      (row, r) =>
        row.map((cell, c) => pad(cell, c)).join("  ") +
        (r === 0 ? `\n${widths.map((w) => "-".repeat(w)).join("  ")}` : ""),
    )
    .join("\n");
}

/** Milliseconds to three significant digits or so: 0.94, 12.3, 168. */
export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  if (ms < 10) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return String(Math.round(ms));
}

function latencyCells(latency: LatencySummary): string[] {
  return [fmtMs(latency.p50), fmtMs(latency.p99), fmtMs(latency.p999), fmtMs(latency.max)];
}

export function scenarioTable(scenario: ScenarioResult, markdown = false): string {
  const rows: (string | number)[][] = [
    [
      "offered ev/s",
      "deliveries/s",
      "design",
      "p50 ms",
      "p99 ms",
      "p99.9 ms",
      "max ms",
      "delivered",
      "coalesced",
      "missing",
      "dup",
      "server µs/deliv",
      "server cores",
      "postgres cores",
      "machine busy",
      "others' cores",
      "stolen cores",
      "result",
    ],
  ];
  const steps = [...scenario.steps].sort((a, b) => a.step - b.step || a.design.localeCompare(b.design));
  for (const s of steps) {
    rows.push([
      s.offeredEventsPerSecond,
      fmtRate(s.offeredDeliveriesPerSecond),
      s.design,
      ...latencyCells(s.latency),
      s.delivered,
      s.superseded,
      s.missing,
      s.duplicates,
      round(s.serverCpuUsPerDelivery, 1),
      round(s.serverCpuCores, 2),
      round(s.postgresCpuCores ?? 0, 2),
      `${Math.round(s.machineBusy * 100)}%`,
      round(s.otherCpuCores ?? 0, 2),
      round(s.stolenCpuCores ?? 0, 2),
      `${s.passed ? "pass" : `FAIL: ${s.failure ?? ""}`}${setAside(s)}`,
    ]);
  }
  return table(rows, markdown);
}

export function summaryTables(result: BenchResult, markdown = false): string {
  const out: string[] = [];
  const heading = (text: string) => out.push(markdown ? `\n### ${text}\n` : `\n== ${text} ==`);
  const rows: (string | number)[][] = [["scenario", ...result.designs]];
  for (const scenario of result.scenarios) {
    const label = scenarioRunLabel(scenario, result.scenarios);
    const max = result.summary.maxSustainable[label] ?? {};
    rows.push([`${label}: max sustainable deliveries/s`, ...result.designs.map((d) => bound(max[d]))]);
    const equal = result.summary.equalLoad[label];
    if (equal) {
      for (const key of ["p50", "p99", "p999"] as const) {
        rows.push([
          `${label}: ${key === "p999" ? "p99.9" : key} ms at ${fmtRate(equal.offeredDeliveriesPerSecond)}/s`,
          ...result.designs.map((d) => fmtMs(equal.byDesign[d]?.[key])),
        ]);
      }
      rows.push([
        `${label}: server CPU µs/delivery at ${fmtRate(equal.offeredDeliveriesPerSecond)}/s`,
        ...result.designs.map((d) => String(round(equal.byDesign[d]?.serverCpuUsPerDelivery ?? NaN, 1))),
      ]);
    }
  }
  for (const size of [...new Set(result.idle.map((i) => i.connections))]) {
    const at = (d: Design) => result.idle.find((i) => i.design === d && i.connections === size);
    const label = `idle ${size.toLocaleString("en-US")}`;
    for (const key of ["heapPerConnection", "rssPerConnection"] as const) {
      rows.push([
        `${label}: ${key === "heapPerConnection" ? "heap" : "RSS"} per connection`,
        ...result.designs.map((d) => {
          const idle = at(d);
          return idle ? fmtBytes(idle[key]) : "–";
        }),
      ]);
    }
    rows.push([
      `${label}: server CPU while idle, cores`,
      ...result.designs.map((d) => {
        const idle = at(d);
        return idle?.quietCpuCores === undefined ? "–" : String(round(idle.quietCpuCores, 3));
      }),
    ]);
    rows.push([
      `${label}: subscribers held / broadcast reached`,
      ...result.designs.map((d) => {
        const idle = at(d);
        return idle ? `${idle.ready} / ${idle.broadcast.delivered}` : "–";
      }),
    ]);
  }
  heading("Summary");
  out.push(table(rows, markdown));
  // A scenario run several times has its targets judged at the worse end of their spread
  // (`repeatedTables`), not repetition by repetition: here are only the others (the idle run's).
  const repeated = new Set(result.scenarios.map((s) => s.name)).size < result.scenarios.length;
  const labels = result.scenarios.map((s) => `${scenarioRunLabel(s, result.scenarios)}: `);
  const targets = repeated
    ? result.summary.targets.filter((t) => !labels.some((label) => t.name.startsWith(label)))
    : result.summary.targets;
  if (targets.length > 0) {
    heading(repeated ? "Targets of the idle run" : "Targets (ratios from this run)");
    out.push(targetsTable(targets, markdown));
  }
  if (result.publishThroughput || result.polling) heading("Also measured");
  const also: (string | number)[][] = [["figure", "value"]];
  if (result.publishThroughput) {
    const t = result.publishThroughput;
    also.push([
      "events/s one Pulse worker process publishes (EventBus.publish, closed loop)",
      `${fmtRate(t.eventsPerSecond)}/s over ${t.chains} runs`,
    ]);
    also.push(["publisher CPU per event", `${round(t.cpuUsPerEvent, 1)} µs`]);
  }
  if (result.polling) {
    const p = result.polling;
    also.push(["polling fallback, per idle client: requests/min", round(p.requestsPerMinutePerClient, 1)]);
    also.push(["polling fallback, per idle client: bytes/min", fmtBytes(p.bytesPerMinutePerClient)]);
    also.push(["healthy socket, per idle client: requests/min", 0]);
    also.push(["healthy socket, per idle client: bytes/min (keep-alive)", fmtBytes(p.socketBytesPerMinutePerClient)]);
  }
  if (also.length > 1) out.push(table(also, markdown));
  return out.join("\n");
}

export function targetsTable(targets: TargetCheck[], markdown = false): string {
  const rows: (string | number)[][] = [["target", "measured", "wanted", "status", "the floor's", "detail"]];
  const shown = (figure: { value: number | null; bound?: "atLeast" | "atMost" } | undefined) =>
    !figure || figure.value === null
      ? "–"
      : `${figure.bound === "atLeast" ? "≥ " : figure.bound === "atMost" ? "≤ " : ""}${figure.value}`;
  for (const t of targets) {
    const status = t.met === true ? "met" : t.met === false ? "NOT MET" : t.value === null ? "n/a" : "unknown";
    rows.push([t.name, shown(t), t.target, status, shown(t.floor), t.detail]);
  }
  return table(rows, markdown);
}

/** A load step over the repetitions: median latencies, the p99's min–max, passed only if every repetition passed. */
export type MergedStep = StepResult & { p99Band: { min: number; max: number }; repetitions: number };

/** One panel per scenario name: each design's steps at each offered load, merged over the repetitions. */
export function mergeRepetitions(
  scenarios: ScenarioResult[],
): { name: string; description: string; steps: MergedStep[] }[] {
  const names = [...new Set(scenarios.map((s) => s.name))];
  return names.map((name) => {
    const runs = scenarios.filter((s) => s.name === name);
    const groups = new Map<string, StepResult[]>();
    for (const step of runs.flatMap((r) => r.steps)) {
      const key = `${step.design} ${step.offeredDeliveriesPerSecond}`;
      groups.set(key, [...(groups.get(key) ?? []), step]);
    }
    const steps = [...groups.values()].map((group): MergedStep => {
      const p99s = group.map((s) => s.latency.p99);
      return {
        ...group[0]!,
        latency: { ...group[0]!.latency, p50: median(group.map((s) => s.latency.p50)), p99: median(p99s) },
        passed: group.every((s) => s.passed),
        p99Band: { min: Math.min(...p99s), max: Math.max(...p99s) },
        repetitions: group.length,
      };
    });
    return { name, description: runs[0]!.description, steps };
  });
}

/**
 * Latency (median p99 solid, median p50 dashed, the p99's min–max over the repetitions as a
 * band) against offered deliveries/s, one panel per scenario, log-log.
 */
export function latencyChart(result: BenchResult): string {
  const panelW = 470;
  const panelH = 330;
  const margin = { left: 58, right: 16, top: 44, bottom: 46 };
  const panels = mergeRepetitions(result.scenarios);
  const width = panelW * Math.max(1, panels.length) + 20;
  const legendRows = Math.ceil(result.designs.length / 2);
  const height = panelH + 24 + legendRows * 20 + 22;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  panels.forEach((scenario, index) => {
    const x0 = 10 + index * panelW;
    const plotW = panelW - margin.left - margin.right;
    const plotH = panelH - margin.top - margin.bottom;
    const left = x0 + margin.left;
    const xs = scenario.steps.map((s) => s.offeredDeliveriesPerSecond);
    const ys = scenario.steps.flatMap((s) => [s.latency.p50, s.p99Band.min, s.p99Band.max]).filter((v) => v > 0);
    if (xs.length === 0 || ys.length === 0) return;
    const [xMin, xMax] = [Math.min(...xs) / 1.2, Math.max(...xs) * 1.2];
    const [yMin, yMax] = [
      Math.max(0.1, Math.min(...ys) / 1.5),
      Math.max(result.plan.p99BoundMs * 2, Math.max(...ys) * 1.5),
    ];
    const sx = (v: number) => left + (Math.log10(v / xMin) / Math.log10(xMax / xMin)) * plotW;
    const sy = (v: number) =>
      margin.top + plotH - (Math.log10(Math.max(v, yMin) / yMin) / Math.log10(yMax / yMin)) * plotH;
    parts.push(`<text x="${left}" y="16" font-weight="600" font-size="13">${escapeXml(scenario.name)}</text>`);
    parts.push(`<text x="${left}" y="32" fill="#374151">${escapeXml(scenario.description)}</text>`);
    parts.push(`<rect x="${left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#d1d5db"/>`);
    for (let exp = Math.floor(Math.log10(yMin)); exp <= Math.ceil(Math.log10(yMax)); exp++) {
      const v = 10 ** exp;
      if (v < yMin || v > yMax) continue;
      parts.push(`<line x1="${left}" x2="${left + plotW}" y1="${sy(v)}" y2="${sy(v)}" stroke="#f3f4f6"/>`);
      parts.push(
        `<text x="${left - 6}" y="${sy(v) + 4}" text-anchor="end" fill="#4b5563">${v >= 1 ? v : v.toFixed(1)}</text>`,
      );
    }
    for (let exp = Math.floor(Math.log10(xMin)); exp <= Math.ceil(Math.log10(xMax)); exp++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** exp;
        if (v < xMin || v > xMax) continue;
        parts.push(
          `<line x1="${sx(v)}" x2="${sx(v)}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#f3f4f6"/>`,
        );
        parts.push(
          `<text x="${sx(v)}" y="${margin.top + plotH + 16}" text-anchor="middle" fill="#4b5563">${fmtRate(v)}</text>`,
        );
      }
    }
    const boundY = sy(result.plan.p99BoundMs);
    parts.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${boundY}" y2="${boundY}" stroke="#f59e0b" stroke-dasharray="4 3"/>`,
    );
    parts.push(`<text x="${left + 4}" y="${boundY - 4}" fill="#b45309">p99 bound ${result.plan.p99BoundMs} ms</text>`);
    parts.push(
      `<text x="${left + plotW / 2}" y="${margin.top + plotH + 36}" text-anchor="middle" fill="#111827">offered deliveries/s (log)</text>`,
    );
    parts.push(
      `<text transform="translate(${x0 + 14},${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#111827">latency ms (log)</text>`,
    );
    for (const design of result.designs) {
      const steps = scenario.steps
        .filter((s) => s.design === design)
        .sort((a, b) => a.offeredDeliveriesPerSecond - b.offeredDeliveriesPerSecond);
      if (steps.length === 0) continue;
      const color = COLORS[design];
      const path = (key: "p50" | "p99") =>
        steps
          .map(
            (s, i) => `${i ? "L" : "M"}${sx(s.offeredDeliveriesPerSecond).toFixed(1)},${sy(s.latency[key]).toFixed(1)}`,
          )
          .join(" ");
      const band = [
        ...steps.map((s) => `${sx(s.offeredDeliveriesPerSecond).toFixed(1)},${sy(s.p99Band.max).toFixed(1)}`),
        ...[...steps]
          .reverse()
          .map((s) => `${sx(s.offeredDeliveriesPerSecond).toFixed(1)},${sy(s.p99Band.min).toFixed(1)}`),
      ];
      parts.push(`<polygon points="${band.join(" ")}" fill="${color}" opacity="0.15" stroke="none"/>`);
      parts.push(
        `<path d="${path("p50")}" fill="none" stroke="${color}" stroke-width="1.2" stroke-dasharray="3 3" opacity="0.8"/>`,
      );
      parts.push(`<path d="${path("p99")}" fill="none" stroke="${color}" stroke-width="2"/>`);
      for (const s of steps) {
        parts.push(
          `<circle cx="${sx(s.offeredDeliveriesPerSecond).toFixed(1)}" cy="${sy(s.latency.p99).toFixed(1)}" r="3.5" fill="${s.passed ? color : "#ffffff"}" stroke="${color}" stroke-width="1.5"><title>${escapeXml(`${design} at ${fmtRate(s.offeredDeliveriesPerSecond)}/s: median p50 ${s.latency.p50} ms, p99 ${s.latency.p99} ms (${s.p99Band.min}–${s.p99Band.max} over ${s.repetitions})${s.passed ? "" : ` (failed: ${s.failure ?? ""})`}`)}</title></circle>`,
        );
      }
    }
  });
  const legendTop = panelH + 24;
  result.designs.forEach((design, i) => {
    const lx = 10 + 58 + (i % 2) * 440;
    const ly = legendTop + Math.floor(i / 2) * 20;
    parts.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${COLORS[design]}" stroke-width="2"/>`,
    );
    parts.push(`<text x="${lx + 28}" y="${ly}" fill="#111827">${escapeXml(DESIGN_TITLES[design])}</text>`);
  });
  parts.push(
    `<text x="${10 + 58}" y="${legendTop + legendRows * 20 + 4}" fill="#6b7280">medians over the repetitions · solid: p99 (band: its min–max) · dashed: p50 · hollow dot: some repetition failed the step · ${escapeXml(result.startedAt.slice(0, 10))}</text>`,
  );
  parts.push("</svg>");
  return parts.join("\n");
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A step's attempts set aside because they failed while the machine was disturbed, if any. */
function setAside(step: StepResult): string {
  const runs = step.disturbedRuns ?? [];
  if (runs.length === 0) return "";
  const what = runs.map(
    (r) => `others ${round(r.otherCpuCores, 2)}, stolen ${round(r.stolenCpuCores, 2)} cores: ${r.failure}`,
  );
  return ` (after ${runs.length} disturbed attempt${runs.length > 1 ? "s" : ""} set aside: ${what.join("; ")})`;
}

/** A run's scenario results, each scenario's repetitions together, in the order the scenarios first ran. */
function scenariosByName(scenarios: readonly ScenarioResult[]): Map<string, [ScenarioResult, ...ScenarioResult[]]> {
  const byName = new Map<string, [ScenarioResult, ...ScenarioResult[]]>();
  for (const scenario of scenarios) {
    const repetitions = byName.get(scenario.name);
    if (repetitions) repetitions.push(scenario);
    else byName.set(scenario.name, [scenario]);
  }
  return byName;
}

/** How much other work and the hypervisor took from each scenario's steps: the figures' noise, stated with them. */
function noise(result: BenchResult): string {
  const spread = (values: number[]) =>
    `${round(values.reduce((a, b) => a + b, 0) / values.length, 2)} on average (at most ${round(Math.max(...values), 2)})`;
  // One figure per scenario, over the steps of all its repetitions.
  const parts = [...scenariosByName(result.scenarios)].flatMap(([name, repetitions]) => {
    const steps = repetitions.flatMap((scenario) => scenario.steps);
    if (steps.length === 0) return [];
    const reruns = steps.reduce((n, s) => n + (s.disturbedRuns?.length ?? 0), 0);
    return [
      `${name}: other processes ${spread(steps.map((s) => s.otherCpuCores ?? 0))}, stolen ${spread(steps.map((s) => s.stolenCpuCores ?? 0))}` +
        (reruns ? `, ${reruns} disturbed attempt${reruns > 1 ? "s" : ""} set aside` : ""),
    ];
  });
  return parts.length
    ? `; during the load steps, in cores: ${parts.join("; ")}. "Stolen" is time the hypervisor gave to other guests (a shared virtual machine). The "others' cores" and "stolen cores" columns say which steps that touched.`
    : ".";
}

/** How the Socket.IO design's events reached its server, in the words of the report. */
function socketIoPath(publish: BenchResult["socketIoPublish"]): string {
  if (publish === "bridge")
    return `Fed as seed 000 feeds it (\`--socket-io-publish=bridge\`, a named variant):
  the agent's job reports through BullMQ (\`job.updateProgress\`), and a QueueEvents bridge
  in the server process emits each to its tenant's room with \`io.local\` (on one node,
  \`io.to\` would also publish through the adapter and decode its own echo).`;
  if (publish === "emitter-postgres")
    return `Fed by \`@socket.io/redis-emitter\` from the worker, after the worker has
  inserted each step and log event into a table of the same PostgreSQL database Pulse writes
  to (\`--socket-io-publish=emitter-postgres\`): Socket.IO **with persistence**, Pulse's like
  for like (progress stays out of the database, as in Pulse).`;
  return `Fed its cheapest way (the default, \`--socket-io-publish=emitter\`):
  \`@socket.io/redis-emitter\` in the worker, one Redis hop, no BullMQ, nothing persisted —
  Socket.IO **without persistence**, while Pulse persists steps and logs. Compare with an
  \`emitter-postgres\` run for the like-for-like figure.`;
}

/** How long the equal-load steps last; a run planned before they had a least number of events says so. */
function comparisonLength(plan: BenchResult["plan"]): string {
  const step = `${plan.stepMs / 1000} s`;
  const least = plan.comparisonMinEvents as number | undefined;
  const rests = `the row "events a step" says how many events each p99 rests on.`;
  return least
    ? `Each of these steps publishes for ${step}, or until it has published ${least} events at a rate
  too low for that many in ${step}: ${rests}`
    : `In this run each of these steps published for ${step} whatever its rate, so at a low rate a
  p99 is of a few dozen events, their slowest one or two (later runs publish at least
  ${FULL_PLAN.comparisonMinEvents}): ${rests}`;
}

/** What the wave's CPU table holds, or that the run did not keep it. */
function waveCpuMethod(result: BenchResult): string {
  const kept = (result.firstEvent ?? []).some((w) => w.cpu);
  if (!kept) return "This run did not record where the machine's CPU went during each wave (later runs do).";
  return `The machine's CPU over each wave (from asking the clients for it until they report it done,
  their connections closed) is split by process: the server, PostgreSQL, Redis, and the rest of
  the bench (the publisher, which for Pulse is its worker writing steps and logs to the
  database, and the clients). Every design shares the machine's cores, so what the publishing
  takes is what its server does not get.`;
}

/** How the time-to-first-event waves are made (nothing for runs planned before they existed). */
function firstEventMethod(result: BenchResult): string {
  const wave = result.plan.firstEvent as BenchResult["plan"]["firstEvent"] | undefined;
  if (!wave) return "";
  const opening = (result.firstEvent ?? []).flatMap((w) => (w.openingMs === undefined ? [] : [w.openingMs]));
  const took = opening.length
    ? `${Math.min(...opening)}–${Math.max(...opening)} ms in this run`
    : "not recorded by runs before 2026-12-06";
  return `- **Time to first event on subscribe**: ${wave.tenants} tenants, each publishing ${wave.eventsPerSecondPerTenant} events/s;
  ${wave.leadMs / 1000} s after they start, ${wave.tenants * wave.subscribersPerTenant} subscribers (lean clients) open their connections at once.
  The client starts them all in one turn of its event loop, and no request leaves it before
  that turn ends: up to that turn's length of every design's figures is the client's own
  work (each wave's \`openingMs\`: ${took}).
  Each is timed from the moment it starts to its socket being open (*connect*), to its
  subscription being in place (*subscribed*: Pulse's snapshot, which reads the database;
  Socket.IO's \`connect\` event, sent after the room join; the floor's "ready"), and to the
  first live event it receives (*first event*, which also waits up to ${Math.round(1000 / wave.eventsPerSecondPerTenant)} ms for its tenant's
  next event). A wave in which a subscriber got no event within ${(wave.publishMs - wave.leadMs) / 1000} s counts as failed.
  Target: Pulse's first event p99 ≤ 2 × Socket.IO's subscribed (\`connect\` event) p99.
  ${waveCpuMethod(result)}
`;
}

/** Which Socket.IO the storm measured, and why that one. */
function stormSocketIoSetup(adapter: SocketIoAdapter): string {
  if (adapter === "redis")
    return `Socket.IO's storm ran on the Redis adapter, which keeps no session: connection-state recovery
  could not apply (it needs the in-memory or the Redis Streams adapter), and what was published meanwhile was lost.`;
  if (adapter === "memory")
    return `Socket.IO's storm runs on one node with the default in-memory adapter and \`connectionStateRecovery\`
  (the Redis adapter the load scenarios use keeps no session, so recovery cannot apply there): the server keeps
  each session and the packets broadcast since, and bridges the events in from a Redis pub/sub channel per tenant.
  Recovery at its cheapest, on a single server (\`--socket-io-storm=redis-streams\` runs the multi-node setup);
  each client has had an event before the first drop, as socket.io-client has no offset to resume from before one.`;
  return `Socket.IO's storm runs on \`@socket.io/redis-streams-adapter\` with \`connectionStateRecovery\` (the Redis
  adapter the load scenarios use keeps no session, so recovery cannot apply there); each client has had an event
  before the first drop, as socket.io-client has no offset to resume from before one. The stream is kept to about
  ${SOCKET_IO_STREAMS_OPTIONS.maxLen.toLocaleString("en")} entries (the adapter's default of 10,000 would trim what the full storm's clients missed),
  and the worker emits through a listener-less Socket.IO server on the same adapter (one XADD an event:
  \`@socket.io/redis-emitter\` publishes over pub/sub, which this adapter does not read). A live event can reach a
  recovered client twice (in its session's replay and again from the adapter's stream reader): Socket.IO's duplicates.`;
}

/** How the reconnect storms are made (nothing for runs planned before they existed). */
function stormMethod(result: BenchResult): string {
  const storm = result.plan.reconnectStorm as BenchResult["plan"]["reconnectStorm"] | undefined;
  if (!storm) return "";
  const resumes = new Map((result.reconnectStorm ?? []).map((s) => [s.design, s.resume]));
  const resumeText = [...resumes].map(([design, resume]) => `**${design}** ${resume}`).join("; ");
  return `- **Reconnect storm** (Pulse and Socket.IO): ${storm.tenants * storm.clientsPerTenant} clients (${storm.tenants} tenants) connected and
  live; the server destroys every connection at once (a deploy); each tenant gets
  ${storm.missedPerTenant.join(" or ")} events while its clients are away; then every client reconnects at once while each
  tenant publishes ${storm.liveEventsPerSecondPerTenant} events/s. A client whose attempt fails (refused, or not subscribed in time)
  tries again after its client library's delay (\`@pulse/client\`'s \`reconnectDelayMs\`, socket.io-client's
  default backoff); the retries are counted. How each design's clients resume, as the run recorded it: ${resumeText}.
  ${stormSocketIoSetup(result.socketIoStormAdapter ?? "redis")}
  Pulse's server listens with its default backlog of 4096 (\`LISTEN_BACKLOG\`), Socket.IO's storm server with
  Node's 511, which served it better here: given 4096, it took longer in 2 of 6 storms and once stopped answering
  for over a minute. A client is back to live at
  its first event published after the reconnect; *all live* is the last client's time (failed when one
  was not back within ${storm.timeoutMs / 1000} s, or when its server stopped answering the bench: that storm is
  recorded failed, with no other figure, and a new server takes over for what comes after). Lost and duplicated events are counted per client; a
  client not back within that time counts the events it missed and had not received by then as lost (its
  server had not yet served it all, and *all live* reads failed); server CPU and, for
  Pulse on PostgreSQL, the database's committed transactions (\`pg_stat_database\`, the live events'
  writes included; approximate, as backends report their counters up to a second late) from the reconnect until all are live.
  ${stormCpuMethod(result)} Target: Pulse all live no later than Socket.IO, with nothing lost or duplicated.
`;
}

/** What the storm's CPU table holds, or that the run did not keep it. */
function stormCpuMethod(result: BenchResult): string {
  const kept = (result.reconnectStorm ?? []).some((s) => s.cpu);
  if (!kept) return "This run did not record where the machine's CPU went during the reconnects (later runs do).";
  return `The machine's CPU over the same time is split by process as for the waves (the publisher
  here publishing each tenant's live events), in a table per storm size.`;
}

/** docs/BENCHMARK.md: how the figures are made, then the latest figures. */
export function benchmarkMarkdown(result: BenchResult): string {
  const plan = result.plan;
  const m = result.machine;
  // A scenario is described once, however many repetitions ran it.
  const scenarioLines = [...scenariosByName(result.scenarios).values()].map(([s]) => {
    const rates = plan.scenarios.find((p) => p.name === s.name)?.eventRates ?? [];
    const factor = rates.length > 1 ? round(rates[1]! / rates[0]!, 2) : 1;
    return `- **${s.name}**: ${s.description} (${s.tenants * s.subscribersPerTenant} connections; ${s.runsPerTenant} run(s) per tenant publishing; ${s.officialClients} subscribers on the official client library). Offered load from ${fmtRate(rates[0] ?? 0)} events/s, ×${factor} per step.`;
  });
  return `# Benchmark: Pulse against Socket.IO, SSE and plain ws

Generated by \`npm run bench:docs -- <json>\` from the JSON named below; do not edit by hand.
The figures below are from ${result.startedAt} (commit ${result.revision ?? "unknown"}) and took ${Math.round(result.durationS)} s.
The chart is [benchmark-latency.svg](benchmark-latency.svg); every figure is also in
\`.data/bench/latest.json\` after a run.

![Latency against offered load](benchmark-latency.svg)

## What is compared

One command runs the same workload against the ways of streaming agent events to
dashboards below, on one machine, with one Redis (this run: ${result.designs.join(", ")}; a
full run measures SSE only when \`--only\` names it, as no target compares it):

- **pulse**: Pulse as it ships. A worker process publishes through \`EventBus.publish\`
  (zod validation, the database projection, XADD to the tenant's Redis stream); an API
  process (\`bootPulse\` + \`createPulseServer\`, web and workers off, configured from the
  environment like \`npm start\`) reads the streams with its one stream reader and serves
  \`agent.onStatus\` over tRPC's WebSocket protocol. Only the caps a bench must lift
  (connections per tenant, user and address; messages per second) are raised.
  Publisher here: ${result.pulsePublisher}.
- **socket-io**: the design of seed 000. Socket.IO 4 on node:http at \`/rt\`, a JWT verified
  on connect, each socket in its tenant's room, \`@socket.io/redis-adapter\`.
  ${socketIoPath(result.socketIoPublish)}
- **sse**: seed 003's server-sent events made multi-server: node:http, one Redis pub/sub
  channel per tenant (subscribed while the process has a subscriber of that tenant), each
  event framed once and written to every response of the tenant; JWT in the query string.
- **ws-floor**: plain \`ws\` fed by the same per-tenant pub/sub, sending each event's
  published bytes to every socket of the tenant: no envelope, no per-subscriber work beyond
  the frame header. Like a careful \`ws\` server it batches the messages of one Redis read
  per tenant (sent in one microtask) and corks each socket around its frames, so a batch
  leaves in one write. The least a careful server does, not a proven minimum.

The events are realistic agent events, the same for every design (330–370 B of JSON: 80%
\`agent:progress\` with a message, 10% \`agent:step\`, 10% \`agent:log\`, with Pulse's
fields \`seq\` and \`at\`).

## How it is measured

- **Open loop.** A publisher process sends each step's events on a fixed schedule: event
  *k* is due at *start + k/rate* and carries that intended time (\`#b<k>@<µs>\` inside its
  message text, a field the schema already has). Events of one run are published one after
  another, as an agent awaits \`ctx.progress()\`; runs are published in parallel. Latency is
  receive time − intended time, on the machine's monotonic clock, so a publisher or server
  that falls behind shows up as latency (no coordinated omission).
- **Clients** run in their own process: a few subscribers per design use the official
  client (\`@trpc/client\` wsLink, \`socket.io-client\`, \`eventsource\`, \`ws\`) and decode
  every event; the rest are lean clients speaking the same wire protocol that find the
  marker in the raw frame. Every subscriber counts each event it should get: delivered,
  missing, duplicated, or of another tenant. Latencies go into an HDR histogram
  (\`hdr-histogram-js\`, µs, 3 significant digits).
- **Repetitions.** Each scenario runs ${plan.repetitions} times (\`--repetitions\`); the designs connect and
  step in an order rotated at every repetition and every step. Tables give the **median and
  the spread (min–max of the repetitions; not an IQR, which at ${plan.repetitions} would hide the worst)**;
  ratios are taken repetition by repetition, and a target counts as met only at the worse
  end of their spread.
- **Ladders.** The first repetition climbs each design's ladder from its first step; the
  later ones start each design ${plan.reclimbSteps} steps (×${(1.3 ** plan.reclimbSteps).toFixed(1)}) below its maximum of the repetition
  before, and step down from there if that first step fails: the steps far below a design's
  maximum tell nothing new.
- **Soak.** In each scenario's last repetition, each design publishes at the median of its
  repetitions' maxima for ${plan.soakMs / 1000} s (\`--soak-seconds\`): that maximum is confirmed only if this passes
  too (all delivered, p99 under the bound). A design that fails soaks again a ladder step
  lower, at most ${plan.soakStepsDown} times, every design alike: the highest rate it held for the whole soak is
  its **sustained** maximum, one figure per design (the "sustained" targets). A soak ends as
  soon as more than 1% of all the deliveries it was to make have arrived later than the bound:
  its p99 could then only end above it (\`stoppedAfterS\` in the JSON).
- **Latency compared at equal load**: Pulse and Socket.IO at ${plan.comparisonFractions.map((f) => `${f * 100}%`).join(", ")} of the weaker of their
  maxima of the same repetition — not at the weaker design's knee.
  ${comparisonLength(plan)} The row "pulse: steps and
  logs only" is the p99 of the fifth of the events Pulse writes to its database before it
  appends them, and "pulse: progress only" that of the rest, which go to the stream at once
  (Pulse's live path alone; runs before 2026-12-06 did not keep it): how much of its tail
  that write is.
- **Long soak** (the \`soak\` scenario): in the last repetition of ${plan.longSoak.scenario}, ${plan.longSoak.design} publishes at
  ${plan.longSoak.fraction * 100}% of its median maximum for ${plan.longSoak.windows} windows of ${plan.longSoak.windowMs / 1000} s back to back: each window's p99 (the
  drift is the last ÷ the first), and the server's heap after full collections and RSS
  before the first window and after the last.
- **Steps.** ${plan.stepMs / 1000} s of load per step, then up to ${plan.drainMs / 1000} s to deliver the rest. The designs
  take turns at each step, in rotating order. Every step gets ${plan.disturbance.reruns + 1} tr${plan.disturbance.reruns ? "ies" : "y"}, passing or failing. A step passes when every subscriber got every
  event exactly once and p99 ≤ ${plan.p99BoundMs} ms; a design's **maximum sustainable deliveries/s** is
  its highest passing step (≥ when it never failed within the ladder or the time budget).
  A ratio of two maxima is then a bound (≥ with such a maximum on top, ≤ with it below),
  and a target it cannot settle reads *unknown*.${
    plan.refineSaturation
      ? `
  When a design fails a step, it first runs once more between that step and the one before
  (their geometric mean) before it leaves the ladder, so its maximum is known to ×1.14.`
      : ""
  }${
    plan.disturbance.reruns > 0
      ? `
  A step that fails on timing alone (p99, or deliveries still missing after the drain) while
  other processes and the hypervisor took ≥ ${plan.disturbance.cores} cores is run again, up to ${plan.disturbance.reruns} times, before
  it counts; the attempts set aside are listed in its result. Failures of correctness
  (duplicates, reordering, another tenant's events) are never run again.`
      : ""
  }
  A design may coalesce progress (latest wins per run): a progress event a subscriber never
  got because a newer one of the same run reached it first counts as *coalesced*, not lost;
  every other event must arrive.
- **What limits "max sustainable"**: all processes share two cores, and the clients' work per
  delivery is about the same for every design, so the maximum is the whole machine's. The
  server's CPU per delivery is the figure that says how much one server core carries
  (≈ 1,000,000 / µs per delivery).
- **The floor's column** in the targets: the same ratio with the floor in Pulse's place
  (floor ÷ Socket.IO). The floor does the least any design can, so a target it misses
  asks for more than this machine gives any design on WebSockets and Redis.
- **CPU** is the server process's user + system time over the step divided by the
  deliveries; the machine's busy share shows when the whole box (2 cores shared by server,
  clients, publisher, Redis and PostgreSQL) was the limit.
- **Idle connections**: ${plan.idle.sizes.map((n) => n.toLocaleString("en-US")).join(" then ")} subscribers (${plan.idle.tenants} tenants) held by one server process,
  the clients spread over the loopback addresses 127.0.0.1–8 (one address has ~28,000 ports);
  heap (after full GCs) and RSS before and after, per connection; the server's CPU over
  ${plan.idle.quietMs / 1000} s while they stay idle; then one event per tenant must reach every subscriber. The
  sizes run in that order in the same server process, so RSS the allocator kept from an
  earlier size counts as already there: the memory target is judged at the first, largest.
  The memory row's figure is the worse of the two ratios, so it is met only when heap and RSS
  per connection both are.
${firstEventMethod(result)}${stormMethod(result)}- **Also measured**: the events/s one Pulse worker process publishes through
  \`EventBus.publish\` (closed loop, ${plan.throughput.tenants * plan.throughput.runsPerTenant} runs), and what an idle dashboard costs when it polls
  \`agent.events\` every ${plan.polling.intervalMs / 1000} s (the fallback) against a healthy socket, bytes counted on the TCP socket.

Scenarios:

${scenarioLines.join("\n")}

Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}; Node ${m.node}; Redis ${m.redis}; ${m.database}.
Other work kept the machine ${Math.round(m.backgroundBusy * 100)}% busy just before the run started${noise(result)}

Run it: \`npm run bench\` (its JSON kept as \`docs/bench/<date>-<commit>.json\`, then this page,
the chart and the README's figures generated from it: \`npm run bench:docs -- <that JSON>\`,
with \`--with-persistence=<json>\` for the like-for-like section from a run of
\`npm run bench -- --only=pulse,socket-io --scenarios=wide,narrow --socket-io-publish=emitter-postgres\`);
\`npm run bench -- --only=pulse,socket-io --scenarios=wide,idle\` for part of it (no docs written;
\`--scenarios=first-event,reconnect-storm --wave-clients=1000 --storm-clients=2000\` sizes those two);
\`npm run bench -- --profile [--only=…] [--scenarios=…]\` for CPU profiles of the servers and
publishers over the load steps (\`tsx bench/profile-summary.ts <file>\` lists where the
time goes); \`npm run bench -- --heap [--only=…]\` for heap snapshots around 1,000 idle
subscribers (\`tsx bench/heap-summary.ts <before> <after> 1000\`: what each connection
holds). \`npm test\` runs \`--smoke\`, seconds long, checking every delivery.

## Budgets kept by a test

\`bench/budgets.int.test.ts\` (part of \`npm test\`) measures Pulse as \`npm start\` composes
it, in a child process started with \`--expose-gc\`, and fails when a figure exceeds its
budget in \`bench/budgets.ts\` times its margin. Heap is read after full collections,
CPU from \`process.cpuUsage\`; no wall-clock time is asserted.

| figure | budget | margin | measured when the budget was set (2 cores, load average ~15) |
| --- | ---: | ---: | ---: |
| heap per idle, signed-in WebSocket connection (300 connections) | 5,200 B | ×1.25 | 4,931–5,191 B |
| heap per idle \`agent.onStatus\` subscription, after its snapshot | 6,000 B | ×1.25 | 5,934 B |
| publisher CPU per progress event (\`EventBus.publish\`, PGlite in the process) | 95 µs | ×1.6 | 89–101 µs |

## Figures behind the code's shapes

Measurements that decided how parts of the server are written; the code says why in words,
the figures are kept here.

- **One write per event-loop turn on the command connection** (\`writeOncePerTurn\`,
  \`src/server/redis.ts\`, used in \`src/server/pulse.ts\`). With ioredis's auto-pipelining, which
  sends one pipeline at a time per connection, a worker published 24k progress events/s at
  36 µs of CPU each, with 4 ms scavenges; writing each turn's commands at once, 34k/s at
  31 µs, with 2 ms scavenges.
- **A subscription's outlet ends its own feed** (\`TrackedFeed\`, \`src/server/trpc/trpc.ts\`):
  a listener on the call's abort signal instead cost each idle subscriber about 1 KiB more.

## Latest figures

${summaryTables(result, true)}

${result.scenarios.map((s) => `### Every step: ${scenarioRunLabel(s, result.scenarios)}\n\n${scenarioTable(s, true)}`).join("\n\n")}
`;
}
