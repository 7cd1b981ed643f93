import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { AGENT_ROLE_PATTERN } from "../events/schema";
import type { ChainDefinition } from "./chains";
import type { AnyAgentDefinition } from "./define-agent";

/**
 * What a deployment runs, in a module its adopter owns (`pulse.config.ts` beside package.json,
 * or the file PULSE_CONFIG names): the agents Pulse's workers run, the roles agents outside
 * Pulse report for, and the named chains that combine them.
 *
 * ```ts
 * import { definePulseConfig } from "./src/server/agents/pulse-config";
 * export default definePulseConfig({ agents: [summarizer], chains: [{ name: "digest", roles: ["summarizer"] }] });
 * ```
 */
export interface PulseConfig {
  agents?: readonly AnyAgentDefinition[];
  /**
   * Roles run by agents outside Pulse, which report over HTTP (EXTERNAL_AGENT_ROLES adds more),
   * each a role name or a role with the title the dashboard shows for it (default: the role).
   */
  externalAgentRoles?: readonly (string | ExternalAgentRole)[];
  chains?: readonly ChainDefinition[];
  /** The chain every new tenant starts with, by name (none: tenants start with nothing). */
  setupChain?: string;
}

/** A role whose agent runs outside Pulse, with the title the dashboard shows for it. */
export interface ExternalAgentRole {
  role: string;
  title?: string;
}

/** Declares a deployment's agents and chains; only there for the types. */
export function definePulseConfig(config: PulseConfig): PulseConfig {
  return config;
}

/** The agents, external roles and chains of one deployment, checked to fit together. */
export interface AgentCatalog {
  agents: readonly AnyAgentDefinition[];
  externalAgentRoles: readonly string[];
  /** The titles external roles were given, by role (a role without one is shown by its name). */
  externalAgentTitles: Readonly<Record<string, string>>;
  chains: readonly ChainDefinition[];
  setupChain?: string;
}

/** A configuration that cannot run, said in one line naming what to change. */
export class PulseConfigError extends Error {
  override name = "PulseConfigError";
}

/**
 * One catalog from several configurations (the adopter's, the demo's, EXTERNAL_AGENT_ROLES),
 * refusing what could not work: a role defined twice, a chain naming a role nobody runs, two
 * chains of one name, a setup chain that does not exist. The first configuration's setup
 * chain wins.
 */
export function combineConfigs(configs: readonly PulseConfig[]): AgentCatalog {
  const agents = configs.flatMap((c) => c.agents ?? []);
  const external = configs
    .flatMap((c) => c.externalAgentRoles ?? [])
    .map((r) => (typeof r === "string" ? { role: r } : r));
  const externalAgentRoles = [...new Set(external.map((r) => r.role))];
  const externalAgentTitles = Object.fromEntries(external.flatMap((r) => (r.title ? [[r.role, r.title]] : [])));
  const chains = configs.flatMap((c) => c.chains ?? []);
  const setupChain = configs.find((c) => c.setupChain)?.setupChain;

  const roles = new Set<string>();
  for (const role of [...agents.map((a) => a.role), ...externalAgentRoles]) {
    if (!AGENT_ROLE_PATTERN.test(role))
      throw new PulseConfigError(`agent role "${role}" must be lowercase letters, digits and dashes`);
    if (roles.has(role))
      throw new PulseConfigError(`agent role "${role}" is defined twice (as Pulse's own agent or an external one)`);
    roles.add(role);
  }
  const names = new Set<string>();
  for (const chain of chains) {
    if (!AGENT_ROLE_PATTERN.test(chain.name))
      throw new PulseConfigError(`chain "${chain.name}" must be named in lowercase letters, digits and dashes`);
    if (names.has(chain.name)) throw new PulseConfigError(`chain "${chain.name}" is defined twice`);
    names.add(chain.name);
    if (chain.roles.length === 0) throw new PulseConfigError(`chain "${chain.name}" has no roles`);
    const unknown = chain.roles.find((role) => !roles.has(role));
    if (unknown)
      throw new PulseConfigError(
        `chain "${chain.name}" runs "${unknown}", which no agent defines and EXTERNAL_AGENT_ROLES does not list`,
      );
  }
  if (setupChain && !names.has(setupChain))
    throw new PulseConfigError(`setupChain "${setupChain}" names no chain of the configuration`);
  return { agents, externalAgentRoles, externalAgentTitles, chains, ...(setupChain ? { setupChain } : {}) };
}

/** The module a deployment's configuration comes from: PULSE_CONFIG, else `pulse.config.ts` in `cwd` if there is one. */
export function configFile(configured: string | undefined, cwd: string): string | undefined {
  if (configured) return path.resolve(cwd, configured);
  const conventional = path.join(cwd, "pulse.config.ts");
  return existsSync(conventional) ? conventional : undefined;
}

/** Loads a configuration module (its default export, or its export named `config`). */
export async function loadPulseConfig(file: string): Promise<PulseConfig> {
  if (!existsSync(file)) throw new PulseConfigError(`PULSE_CONFIG: ${file} does not exist`);
  const loaded = (await import(pathToFileURL(file).href)) as { default?: unknown; config?: unknown };
  const config = loaded.default ?? loaded.config;
  if (!config || typeof config !== "object")
    throw new PulseConfigError(`${file} exports no configuration (export default definePulseConfig({ … }))`);
  return config as PulseConfig;
}
