import { RunCancelledError, type AgentContext } from "../define-agent";

export interface SimulationOptions {
  /** Multiplies every pause: 1 is real time (runs of 5–30 s), 0.05 is twenty times faster. */
  speed: number;
  /** Chance that a first attempt fails part-way, to show retries. */
  failureRate: number;
  random?: () => number;
}

/** Waits, or throws when the run is cancelled meanwhile. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new RunCancelledError());
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new RunCancelledError());
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Streams text a few words at a time, as a language model would. */
export async function streamText(ctx: AgentContext, text: string, options: SimulationOptions): Promise<void> {
  const words = text.split(/(?<=\s)/);
  for (let i = 0; i < words.length; i += 6) {
    await ctx.output(words.slice(i, i + 6).join(""));
    await pause(120 * options.speed, ctx.signal);
  }
}

export interface SimulatedStep {
  name: string;
  /** Real-time duration in ms at speed 1. */
  ms: number;
  log?: string;
  output?: string;
}

/**
 * Runs a scripted sequence of steps with progress, logs and streamed output; on a first
 * attempt it may fail once in the middle, which BullMQ then retries.
 */
export async function runScript(ctx: AgentContext, steps: SimulatedStep[], options: SimulationOptions): Promise<void> {
  const random = options.random ?? Math.random;
  const failAt = ctx.attempt === 1 && random() < options.failureRate ? Math.floor(steps.length / 2) : -1;
  await ctx.progress(0, "Starting", "starting");
  await ctx.log("info", `attempt ${ctx.attempt}: ${steps.length} steps`);
  for (const [index, step] of steps.entries()) {
    await ctx.step(step.name, async () => {
      await ctx.progress(Math.round((index / steps.length) * 100), `${step.name}…`);
      await pause(step.ms * options.speed, ctx.signal);
      if (index === failAt) throw new Error(`${step.name}: upstream source timed out (simulated)`);
      if (step.log) await ctx.log("info", step.log);
      if (step.output) await streamText(ctx, step.output, options);
    });
  }
  await ctx.progress(100, "Wrapping up", "completing");
}
