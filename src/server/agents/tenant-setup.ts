import type { ContextService } from "../context/context-service";
import type { RunService } from "./run-service";

/**
 * Starts a tenant's setup chain unless it ever began (`RunService.startSetup`), and tells
 * the tenant's dashboards its context file is pending: what registration does, and every
 * start of Pulse for tenants whose registration was cut short.
 */
export async function startTenantSetup(services: { runs: RunService; context: ContextService }, tenantId: string) {
  const started = await services.runs.startSetup(tenantId);
  if (started) await services.context.reset(tenantId);
  return started;
}
