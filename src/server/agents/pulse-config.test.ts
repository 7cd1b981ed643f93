import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadAgentCatalog } from "../bootstrap";
import { createLogger } from "../logger";
import { SETUP_CHAIN } from "./demo";
import { defineAgent } from "./define-agent";
import { combineConfigs, configFile, PulseConfigError } from "./pulse-config";

/** A deployment's agents and chains: the adopter's module, the demo's with PULSE_DEMO, and the external roles, checked together. */

const agent = (role: string) => defineAgent({ role, run: async () => {} });
const root = path.resolve(import.meta.dirname, "../../..");
const example = path.join(root, "examples/pulse.config.ts");
const env = { PULSE_DEMO: false, DEMO_SPEED: 1, DEMO_FAILURE_RATE: 0, EXTERNAL_AGENT_ROLES: [] as string[] };
const silent = createLogger("silent");
const refusal = (run: () => unknown) => {
  try {
    run();
    return "accepted";
  } catch (error) {
    return error instanceof PulseConfigError ? error.message : `not a PulseConfigError: ${String(error)}`;
  }
};

describe("combining configurations", () => {
  it("keeps every agent, external role and chain, and the first configuration's setup chain", () => {
    const catalog = combineConfigs([
      { agents: [agent("a")], chains: [{ name: "first", roles: ["a", "outside"] }], setupChain: "first" },
      { agents: [agent("b")], chains: [{ name: "second", roles: ["b"] }], setupChain: "second" },
      { externalAgentRoles: ["outside"] },
    ]);
    expect(catalog.agents.map((a) => a.role)).toEqual(["a", "b"]);
    expect(catalog.externalAgentRoles).toEqual(["outside"]);
    expect(catalog.chains.map((c) => c.name)).toEqual(["first", "second"]);
    expect(catalog.setupChain).toBe("first");
  });

  it("takes external roles by name or with the title the dashboard shows for them", () => {
    const catalog = combineConfigs([
      { externalAgentRoles: [{ role: "python-researcher", title: "Python researcher" }, "bare-agent"] },
      { externalAgentRoles: ["python-researcher"] },
    ]);
    expect(catalog.externalAgentRoles).toEqual(["python-researcher", "bare-agent"]);
    expect(catalog.externalAgentTitles).toEqual({ "python-researcher": "Python researcher" });
  });

  it("refuses, in one line naming it, what could not run", () => {
    expect(refusal(() => combineConfigs([{ agents: [agent("a")] }, { externalAgentRoles: ["a"] }]))).toBe(
      'agent role "a" is defined twice (as Pulse\'s own agent or an external one)',
    );
    expect(refusal(() => combineConfigs([{ agents: [agent("a")], chains: [{ name: "c", roles: ["a", "b"] }] }]))).toBe(
      'chain "c" runs "b", which no agent defines and EXTERNAL_AGENT_ROLES does not list',
    );
    expect(
      refusal(() =>
        combineConfigs([
          {
            agents: [agent("a")],
            chains: [
              { name: "c", roles: ["a"] },
              { name: "c", roles: ["a"] },
            ],
          },
        ]),
      ),
    ).toBe('chain "c" is defined twice');
    expect(refusal(() => combineConfigs([{ agents: [agent("a")], chains: [{ name: "c", roles: [] }] }]))).toBe(
      'chain "c" has no roles',
    );
    expect(refusal(() => combineConfigs([{ agents: [agent("a")], setupChain: "missing" }]))).toBe(
      'setupChain "missing" names no chain of the configuration',
    );
    expect(refusal(() => combineConfigs([{ agents: [agent("Not A Role")] }]))).toMatch(
      /must be lowercase letters, digits and dashes$/,
    );
  });
});

describe("the deployment's catalog", () => {
  it("with PULSE_DEMO=false and PULSE_CONFIG, holds the adopter's agents and chains only", async () => {
    const catalog = await loadAgentCatalog({ ...env, PULSE_CONFIG: example }, silent, root);
    expect(catalog.agents.map((a) => a.role)).toEqual(["summarizer", "reviewer"]);
    expect(catalog.chains.map((c) => c.name)).toEqual(["digest"]);
    expect(catalog.setupChain).toBeUndefined();
  });

  it("with PULSE_DEMO, adds the demo agents and their setup chain; EXTERNAL_AGENT_ROLES adds roles", async () => {
    const catalog = await loadAgentCatalog(
      { ...env, PULSE_DEMO: true, PULSE_CONFIG: example, EXTERNAL_AGENT_ROLES: ["python-agent"] },
      silent,
      root,
    );
    expect(catalog.agents.map((a) => a.role)).toEqual(["summarizer", "reviewer", ...SETUP_CHAIN]);
    expect(catalog.externalAgentRoles).toEqual(["python-agent"]);
    expect(catalog.setupChain).toBe("setup");
  });

  it("without PULSE_CONFIG, reads pulse.config.ts of the working directory if there is one", async () => {
    expect(configFile(undefined, root)).toBeUndefined();
    expect(configFile(undefined, path.dirname(example))).toBe(example);
    expect(configFile("examples/pulse.config.ts", root)).toBe(example);
    const catalog = await loadAgentCatalog(env, silent, path.dirname(example));
    expect(catalog.agents.map((a) => a.role)).toEqual(["summarizer", "reviewer"]);
  });

  it("says in one line when the module is missing or exports nothing", async () => {
    await expect(loadAgentCatalog({ ...env, PULSE_CONFIG: "no/such/pulse.config.ts" }, silent, root)).rejects.toThrow(
      new PulseConfigError(`PULSE_CONFIG: ${path.join(root, "no/such/pulse.config.ts")} does not exist`),
    );
    await expect(
      loadAgentCatalog({ ...env, PULSE_CONFIG: "src/server/agents/chains.ts" }, silent, root),
    ).rejects.toThrow(/exports no configuration/);
  });
});
