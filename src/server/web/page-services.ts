import type { PulseServices } from "../pulse";

/**
 * Hands the running services to Next.js's server components. The pages are bundled apart
 * from the custom server but run in its process, so a process-wide registry is the bridge;
 * the pages import types only, never a second copy of the services.
 */
const KEY = Symbol.for("pulse.page-services");

type Registry = { [KEY]?: PulseServices };

export function exposeServicesToPages(services: PulseServices): void {
  (globalThis as Registry)[KEY] = services;
}

export function servicesForPages(): PulseServices {
  const services = (globalThis as Registry)[KEY];
  if (!services) throw new Error("Pulse's services are not running in this process: start the dashboard with `npm start`.");
  return services;
}
