import { z } from "zod";
import type { ChainDefinition } from "../chains";
import { defineAgent, type AgentDefinition, type AnyAgentDefinition } from "../define-agent";
import type { PulseConfig } from "../pulse-config";
import { runScript, streamText, type SimulationOptions } from "./simulated-work";

/**
 * The demo's setup chain, which every new tenant of a default install runs: research the
 * client, then its competitors, then write the context file from both.
 */
export const SETUP_CHAIN = ["client-researcher", "competitor-researcher", "context-file-writer"] as const;

export const DEMO_SETUP_CHAIN: ChainDefinition = {
  name: "setup",
  title: "Setup chain",
  roles: SETUP_CHAIN,
  input: (tenant) => ({ company: tenant.name }),
  writesContextFile: true,
};

/** What PULSE_DEMO adds to a deployment: the demo agents and their setup chain, started for every new tenant. */
export function demoConfig(options: SimulationOptions): PulseConfig {
  return { agents: demoAgents(options), chains: [DEMO_SETUP_CHAIN], setupChain: DEMO_SETUP_CHAIN.name };
}

/**
 * The demo agents of `npm start`: the setup chain with simulated work, so a new user sees
 * live progress, steps, streamed output, logs and the occasional retry without an API key.
 */
/**
 * What the setup chain runs on: the company to research. Loose, so the chain hands every
 * field on to the next role.
 */
const setupInput = z.looseObject({ company: z.string().min(1).max(200).optional() });

export function demoAgents(options: SimulationOptions): AnyAgentDefinition[] {
  return [clientResearcher(options), competitorResearcher(options), contextFileWriter(options)] as AgentDefinition[];
}

function clientResearcher(options: SimulationOptions) {
  return defineAgent({
    role: "client-researcher",
    title: "Client researcher",
    input: setupInput,
    async run(ctx) {
      const company = ctx.input.company ?? "the client";
      await runScript(
        ctx,
        [
          {
            name: "Read the company website",
            ms: 2500,
            log: "fetched 14 pages",
            output: `${company} sells workflow software to mid-sized logistics firms. `,
          },
          {
            name: "Summarise public filings",
            ms: 2000,
            log: "3 filings found",
            output: "Revenue grew 38% last year; the sales team doubled. ",
          },
          {
            name: "Profile the buyers",
            ms: 2500,
            output: "Buyers are operations leads who care about on-time delivery and fewer manual steps. ",
          },
          { name: "Draft the client brief", ms: 1500, output: "Brief ready for the competitor researcher.\n" },
        ],
        options,
      );
    },
  });
}

function competitorResearcher(options: SimulationOptions) {
  return defineAgent({
    role: "competitor-researcher",
    title: "Competitor researcher",
    input: setupInput,
    async run(ctx) {
      await runScript(
        ctx,
        [
          {
            name: "Find competitors",
            ms: 2000,
            log: "5 candidates, 3 relevant",
            output: "Main competitors: RouteWise, Shipyard, Loadstar. ",
          },
          { name: "Compare pricing", ms: 2500, output: "RouteWise is cheapest; Loadstar bundles telematics. " },
          {
            name: "Compare positioning",
            ms: 2500,
            log: "read 42 reviews",
            output: "Reviewers praise onboarding speed and complain about reporting. ",
          },
          { name: "Write the comparison", ms: 1500, output: "Comparison table attached.\n" },
        ],
        options,
      );
    },
  });
}

function contextFileWriter(options: SimulationOptions) {
  return defineAgent({
    role: "context-file-writer",
    title: "Context file writer",
    input: setupInput,
    async run(ctx) {
      await ctx.contextFile.markGenerating();
      await runScript(
        ctx,
        [
          { name: "Outline the context file", ms: 1500, log: "outline: 4 sections" },
          { name: "Write the positioning section", ms: 2500 },
          { name: "Write the competitor section", ms: 2500 },
        ],
        options,
      );
      const content = [
        "# Context file",
        "",
        "## Who the client is",
        "Workflow software for mid-sized logistics firms; fast growth, sales-led.",
        "",
        "## Who buys",
        "Operations leads who measure on-time delivery and manual effort.",
        "",
        "## Competitors",
        "RouteWise (price), Shipyard (breadth), Loadstar (telematics bundle).",
        "",
        "## How to talk about it",
        "Lead with onboarding speed; answer the reporting objection early.",
        "",
      ].join("\n");
      await ctx.step("Publish the context file", async () => {
        await streamText(ctx, content, options);
        await ctx.contextFile.complete(content);
      });
    },
  });
}
