import { describe, expect, it } from "vitest";
import type { RoleInfo } from "@/lib/trpc/types";
import { formInput } from "./run-input-form";

const fields: RoleInfo["input"] = [
  { kind: "text", name: "documentId", label: "Document id", required: true, maxLength: 128 },
  { kind: "text", name: "note", label: "Note", required: false, maxLength: null },
  { kind: "number", name: "keep", label: "Keep", required: false, integer: true, minimum: 1, maximum: 10, default: 2 },
  { kind: "choice", name: "style", label: "Style", required: false, options: ["prose", "bullets"], default: null },
  { kind: "yes-no", name: "quoted", label: "Quoted", required: false, default: false },
  { kind: "yes-no", name: "deep", label: "Deep", required: false, default: true },
];

/** A submitted form's data as the browser builds it: an unchecked checkbox sends nothing. */
function submitted(values: Record<string, string>): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(values)) form.append(name, value);
  return form;
}

describe("formInput", () => {
  it("gives each field its kind: text trimmed, a number as a number, a checkbox as yes or no", () => {
    const input = formInput(
      submitted({ documentId: "  doc-7 ", note: "read it", keep: "3", style: "bullets", quoted: "on" }),
      fields,
    );
    expect(input).toEqual({
      documentId: "doc-7",
      note: "read it",
      keep: 3,
      style: "bullets",
      quoted: true,
      deep: false,
    });
  });

  it("leaves out text, numbers and choices left empty, so the role's defaults apply; a checkbox always says", () => {
    expect(formInput(submitted({ documentId: "doc-7", note: "   ", keep: "", style: "" }), fields)).toEqual({
      documentId: "doc-7",
      quoted: false,
      deep: false,
    });
  });

  it("reads only the role's fields, not whatever else the form held", () => {
    expect(formInput(submitted({ documentId: "doc-7", stray: "x", deep: "on" }), fields)).toEqual({
      documentId: "doc-7",
      quoted: false,
      deep: true,
    });
  });
});
