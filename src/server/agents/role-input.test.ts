import { describe, expect, it } from "vitest";
import { z } from "zod";
import { roleInputFields } from "./role-input";

describe("roleInputFields", () => {
  it("offers a schema's top-level text fields, with their labels, whether they are required and their length", () => {
    const schema = z.looseObject({
      company: z.string().min(1).max(200).optional(),
      contactName: z.string().meta({ title: "Who to ask" }),
      market_segment: z.string(),
      tags: z.array(z.string()),
    });
    expect(roleInputFields(schema)).toEqual([
      { kind: "text", name: "company", label: "Company", required: false, maxLength: 200 },
      { kind: "text", name: "contactName", label: "Who to ask", required: true, maxLength: null },
      { kind: "text", name: "market_segment", label: "Market segment", required: true, maxLength: null },
    ]);
  });

  it("offers numbers with their bounds and default, a few words as a choice, and yes-or-no", () => {
    const schema = z.object({
      pages: z.number().int().positive().max(10).default(2),
      ratio: z.number().gt(0).lte(1),
      depth: z.number().int().gte(1).lt(5),
      tone: z.enum(["plain", "bullets"]).default("bullets"),
      market: z.enum(["eu", "us"]),
      region: z.enum(["north", "south"]).optional(),
      deep: z.boolean().default(true),
      cite: z.boolean(),
      version: z.literal("v1"),
    });
    expect(roleInputFields(schema)).toEqual([
      // Not required: the schema has a default for it.
      {
        kind: "number",
        name: "pages",
        label: "Pages",
        required: false,
        integer: true,
        minimum: 1,
        maximum: 10,
        default: 2,
      },
      // An exclusive bound of any number is left to the API.
      {
        kind: "number",
        name: "ratio",
        label: "Ratio",
        required: true,
        integer: false,
        minimum: null,
        maximum: 1,
        default: null,
      },
      {
        kind: "number",
        name: "depth",
        label: "Depth",
        required: true,
        integer: true,
        minimum: 1,
        maximum: 4,
        default: null,
      },
      {
        kind: "choice",
        name: "tone",
        label: "Tone",
        required: false,
        options: ["plain", "bullets"],
        default: "bullets",
      },
      { kind: "choice", name: "market", label: "Market", required: true, options: ["eu", "us"], default: null },
      { kind: "choice", name: "region", label: "Region", required: false, options: ["north", "south"], default: null },
      { kind: "yes-no", name: "deep", label: "Deep", required: false, default: true },
      { kind: "yes-no", name: "cite", label: "Cite", required: true, default: false },
    ]);
  });

  it("reads a schema once, however often its role is listed", () => {
    const schema = z.object({ company: z.string() });
    expect(roleInputFields(schema)).toBe(roleInputFields(schema));
  });

  it("offers nothing for a role without an input schema, whose input is not an object, or of fields no control fills", () => {
    expect(roleInputFields(undefined)).toEqual([]);
    expect(roleInputFields(z.string())).toEqual([]);
    expect(roleInputFields(z.object({ at: z.date(), tags: z.array(z.string()), nested: z.object({}) }))).toEqual([]);
  });
});
