import { describe, expect, it } from "vitest";
import { z } from "zod";
import { roleInputFields } from "./role-input";

describe("roleInputFields", () => {
  it("offers a schema's top-level text fields, with their labels, whether they are required and their length", () => {
    const schema = z.looseObject({
      company: z.string().min(1).max(200).optional(),
      contactName: z.string().meta({ title: "Who to ask" }),
      market_segment: z.string(),
      pages: z.number().int(),
      tags: z.array(z.string()),
    });
    expect(roleInputFields(schema)).toEqual([
      { name: "company", label: "Company", required: false, maxLength: 200 },
      { name: "contactName", label: "Who to ask", required: true, maxLength: null },
      { name: "market_segment", label: "Market segment", required: true, maxLength: null },
    ]);
  });

  it("reads a schema once, however often its role is listed", () => {
    const schema = z.object({ company: z.string() });
    expect(roleInputFields(schema)).toBe(roleInputFields(schema));
  });

  it("offers nothing for a role without an input schema, or whose input is not an object", () => {
    expect(roleInputFields(undefined)).toEqual([]);
    expect(roleInputFields(z.string())).toEqual([]);
    expect(roleInputFields(z.object({ at: z.date(), count: z.number() }))).toEqual([]);
  });
});
