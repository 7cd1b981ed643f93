import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { generateRouterTypes, ROUTER_TYPES_FILE } from "../scripts/router-types.js";

describe("PulseRouter (src/router.ts)", () => {
  it("is what the generator prints from the server's AppRouter today (else: npm run generate -w @pulse/client)", async () => {
    const committed = await readFile(ROUTER_TYPES_FILE, "utf8");
    expect(await generateRouterTypes()).toBe(committed);
  });
});
