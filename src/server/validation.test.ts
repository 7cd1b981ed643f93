import { describe, expect, it } from "vitest";
import { z } from "zod";
import { isoDateInput, repairText, text } from "./validation";

const issues = (schema: z.ZodType, value: unknown) => schema.safeParse(value).error?.issues.map((i) => i.message) ?? [];

describe("text()", () => {
  const name = text({ min: 1, max: 10 });

  it("refuses U+0000 and lone surrogates, high or low, saying which", () => {
    expect(issues(name, "a\u0000b")).toEqual(["must not contain the character U+0000"]);
    for (const lone of ["\uD800", "a\uDBFF", "\uDC00b", "\uDFFF\uD800"]) {
      expect(issues(name, lone), JSON.stringify(lone)).toEqual([
        "must not contain a lone surrogate (text that is not valid Unicode)",
      ]);
    }
  });

  it("accepts paired surrogates, direction marks and prototype keys, and keeps its bounds", () => {
    for (const fine of ["😀", "\u202Eabc", "__proto__", "%E0%A4%A"]) expect(name.parse(fine)).toBe(fine);
    expect(issues(name, "")).toHaveLength(1);
    expect(issues(name, "x".repeat(11))).toHaveLength(1);
    expect(text({ max: 5, trim: true }).parse("  ab  ")).toBe("ab");
  });
});

describe("repairText", () => {
  it("keeps an agent's text, with U+0000 and lone surrogates as U+FFFD", () => {
    expect(repairText("a\u0000b\uD800c\uDC00😀")).toBe("a\uFFFDb\uFFFDc\uFFFD😀");
    expect(repairText("plain")).toBe("plain");
  });
});

describe("isoDateInput()", () => {
  const date = isoDateInput();

  it("accepts dates from 2000 to a few years ahead", () => {
    expect(date.parse("2000-01-01T00:00:00Z")).toBe("2000-01-01T00:00:00Z");
    expect(date.safeParse(new Date().toISOString()).success).toBe(true);
  });

  it("refuses year 0, year 9999 and dates JavaScript alone can hold", () => {
    for (const far of [
      "0000-01-01T00:00:00Z",
      "1999-12-31T23:59:59Z",
      "9999-12-31T23:59:59.999Z",
      "+275760-09-13T00:00:00.000Z",
      "2026-01-01T00:00:00\u0000",
    ]) {
      expect(date.safeParse(far).success, far).toBe(false);
    }
  });
});
