import type { ContextService } from "../context/context-service";
import type { RunService } from "./run-service";

type ChainServices = { runs: RunService; context: ContextService };

/**
 * Starts a tenant's setup chain unless it ever began (`RunService.startSetup`), and tells
 * the tenant's dashboards its context file is pending when the chain writes it: what
 * registration does, and every start of Pulse for tenants whose registration was cut short.
 */
export async function startTenantSetup(services: ChainServices, tenantId: string) {
  const started = await services.runs.startSetup(tenantId);
  if (started && services.runs.setupChain()?.writesContextFile) await services.context.reset(tenantId);
  return started;
}

/**
 * Starts a named chain for a tenant (`agent.runChain`); one that writes the context file
 * first marks the current file pending, so no dashboard shows the old one as current.
 */
export async function startNamedChain(
  services: ChainServices,
  tenantId: string,
  name: string,
  input?: Record<string, unknown>,
) {
  if (services.runs.chain(name).writesContextFile) await services.context.reset(tenantId);
  return services.runs.startChain(tenantId, name, input);
}
