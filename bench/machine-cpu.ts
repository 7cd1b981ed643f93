import { readdirSync, readFileSync } from "node:fs";

/**
 * Where the machine's CPU goes during a step, from /proc: the bench's own processes (this
 * orchestrator and everything it started, Redis included), PostgreSQL's processes (Pulse's
 * database writes land there), and everything else on the machine, which is noise the
 * figures should be read against. Linux only; elsewhere every figure is 0.
 */
export interface CpuSample {
  /** Each process's group and CPU clock ticks (1/100 s) since it started. */
  processes: Map<number, { group: "bench" | "postgres" | "other"; ticks: number }>;
  /** Machine-wide busy, stolen and total ticks, all cores. */
  busy: number;
  /** Time the hypervisor gave this machine's cores to other guests (`steal` in /proc/stat). */
  steal: number;
  total: number;
}

export interface CpuShares {
  /** Cores' worth of CPU each group used over the interval. */
  benchCores: number;
  postgresCores: number;
  otherCores: number;
  /** Cores' worth of time the hypervisor took away (a shared virtual machine's neighbours). */
  stolenCores: number;
  /** Share of the whole machine that was busy here (0–1), stolen time not included. */
  machineBusy: number;
}

const TICKS_PER_SECOND = 100;

function readStat(pid: string): { ppid: number; comm: string; ticks: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may contain spaces; fields follow its closing one.
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    return { ppid: Number(fields[1]), comm, ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

export function sampleCpu(rootPid = process.pid): CpuSample {
  const sample: CpuSample = { processes: new Map(), busy: 0, steal: 0, total: 0 };
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const fields = line.trim().split(/\s+/).slice(1, 9).map(Number);
    sample.total = fields.reduce((a, b) => a + b, 0);
    sample.steal = fields[7] ?? 0;
    sample.busy = sample.total - (fields[3] ?? 0) - (fields[4] ?? 0) - sample.steal;
    const stats = new Map<number, { ppid: number; comm: string; ticks: number }>();
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = readStat(entry);
      if (stat) stats.set(Number(entry), stat);
    }
    const isBench = (pid: number): boolean => {
      for (let current = pid, hops = 0; current > 1 && hops < 32; hops++) {
        if (current === rootPid) return true;
        current = stats.get(current)?.ppid ?? 0;
      }
      return false;
    };
    for (const [pid, stat] of stats) {
      sample.processes.set(pid, {
        group: isBench(pid) ? "bench" : stat.comm === "postgres" ? "postgres" : "other",
        ticks: stat.ticks,
      });
    }
  } catch {
    // Not Linux: no figures.
  }
  return sample;
}

/**
 * What each group used between two samples taken `seconds` apart. A process that started in
 * between counts whole; one that ended in between is missing, so the figures are floors.
 */
export function cpuShares(before: CpuSample, after: CpuSample, seconds: number): CpuShares {
  const ticks = { bench: 0, postgres: 0, other: 0 };
  for (const [pid, now] of after.processes) {
    ticks[now.group] += Math.max(0, now.ticks - (before.processes.get(pid)?.ticks ?? 0));
  }
  const cores = (n: number) => (seconds > 0 ? n / TICKS_PER_SECOND / seconds : 0);
  const total = after.total - before.total;
  return {
    benchCores: cores(ticks.bench),
    postgresCores: cores(ticks.postgres),
    otherCores: cores(ticks.other),
    stolenCores: cores(after.steal - before.steal),
    machineBusy: total > 0 ? (after.busy - before.busy) / total : 0,
  };
}
