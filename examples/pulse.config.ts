import { z } from "zod";
import { defineAgent, type AgentContext } from "../src/server/agents/define-agent";
import { definePulseConfig } from "../src/server/agents/pulse-config";

/**
 * A deployment's own agents and chains, loaded at start from `PULSE_CONFIG` (or from
 * `pulse.config.ts` beside package.json): copy this file there and replace the agents' work
 * with yours. `PULSE_DEMO=false` leaves the demo agents out.
 *
 * Here: a summarizer, one run per document at a time (any number of documents at once), and
 * a reviewer; the `digest` chain runs the one after the other.
 */

const documentInput = z.object({
  documentId: z.string().min(1).max(200),
  text: z.string().min(1).max(100_000),
});

const summarizer = defineAgent({
  role: "summarizer",
  title: "Summarizer",
  // The dashboard's "Run with input…" form asks for each field: text, a number, a choice, yes or no.
  input: documentInput.extend({
    keep: z.number().int().min(1).max(10).default(2).meta({ title: "Sentences to keep" }),
    style: z.enum(["prose", "bullets"]).default("prose"),
    quoted: z.boolean().default(false).meta({ title: "Quote each sentence" }),
  }),
  concurrencyKey: (input) => input.documentId,
  async run(ctx) {
    const { keep, style, quoted } = ctx.input;
    const sentences = ctx.input.text.split(/(?<=[.!?])\s+/).filter(Boolean);
    const kept = sentences.slice(0, keep).map((s) => (quoted ? `"${s}"` : s));
    const summary = await ctx.step("Pick the key sentences", () =>
      style === "bullets" ? kept.map((s) => `- ${s}`).join("\n") : kept.join(" "),
    );
    await ctx.progress(60, `Kept ${kept.length} of ${sentences.length} sentences`);
    await ctx.step("Write the summary", () => ctx.output(summary));
    await ctx.log("info", `summarised ${ctx.input.documentId}`);
  },
});

/** The next role of a chain gets the input the previous one parsed: the same document. */
const reviewer = defineAgent({
  role: "reviewer",
  title: "Reviewer",
  input: documentInput,
  async run(ctx: AgentContext<z.output<typeof documentInput>>) {
    await ctx.step("Check the summary against the text", async () => {
      await ctx.progress(50, `Reading ${ctx.input.documentId}`);
    });
    await ctx.output(`Reviewed ${ctx.input.documentId}: no issues.`);
  },
});

export default definePulseConfig({
  agents: [summarizer, reviewer],
  chains: [{ name: "digest", title: "Digest", roles: ["summarizer", "reviewer"] }],
});
