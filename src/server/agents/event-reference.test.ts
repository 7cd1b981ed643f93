import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { reportBodySchema } from "../events/report-schema";

/**
 * docs/AGENTS.md's event reference against the schema the report endpoint parses with: every
 * example body is accepted, and every event type the endpoint accepts has an example.
 */

const doc = readFileSync(path.resolve(import.meta.dirname, "../../../docs/AGENTS.md"), "utf8");
const reference = doc.slice(doc.indexOf("### Event reference"));
const examples = [...reference.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as { type: string });

describe("the external agents' event reference", () => {
  it("has examples, each accepted by the endpoint's schema", () => {
    expect(examples.length).toBeGreaterThan(0);
    for (const example of examples) {
      const parsed = reportBodySchema.safeParse(example);
      expect(parsed.success ? "accepted" : parsed.error.message, JSON.stringify(example)).toBe("accepted");
    }
  });

  it("shows every event type the endpoint accepts", () => {
    const accepted = reportBodySchema.options.map((option) => option.shape.type.value);
    expect(new Set(examples.map((e) => e.type))).toEqual(new Set(accepted));
  });
});
