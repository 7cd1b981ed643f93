import { createLogger } from "../logger";
import { ensureWebBuild } from "./next-handler";

/**
 * `npm run build`: builds the dashboard if its sources changed since the last build. `npm
 * test` runs it first, so browser tests never wait for a build while other tests run.
 */
await ensureWebBuild(createLogger("info", "pulse-build"));
