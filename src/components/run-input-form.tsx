"use client";

import type { RoleInfo } from "@/lib/trpc/types";

type InputField = RoleInfo["input"][number];

/** What a run is started with: the values `agent.run` accepts. */
export type RunInput = Record<string, string | number | boolean>;

/** The longest text asked for on one line; longer ones get a text area. */
const SHORT_FIELD_CHARS = 200;

/** The controls a form can be focused by: the panel's Run focuses the first. */
export const INPUT_CONTROLS = "input, textarea, select";

/**
 * A role's input as a form: a control per field the role's schema describes (text, a number
 * within its bounds, one of a few words, yes or no), each with the schema's default, and the
 * browser's own checks of what is required and in bounds before anything is sent. What is
 * left empty is left out, so the role's default applies.
 */
export function RunInputForm({
  title,
  fields,
  disabled,
  onRun,
}: {
  title: string;
  fields: InputField[];
  disabled?: boolean;
  onRun(input: RunInput): void;
}) {
  return (
    <form
      className="mt-2 flex flex-col gap-2"
      aria-label={`Run ${title} with input`}
      onSubmit={(event) => {
        event.preventDefault();
        onRun(formInput(new FormData(event.currentTarget), fields));
      }}
    >
      {fields.map((field) =>
        field.kind === "yes-no" ? (
          <label key={field.name} className="flex items-center gap-2 text-slate-600">
            <input type="checkbox" name={field.name} defaultChecked={field.default} />
            {field.label}
          </label>
        ) : (
          <label key={field.name} className="flex flex-col gap-1 text-slate-600">
            {field.required ? field.label : `${field.label} (optional)`}
            <FieldControl field={field} />
          </label>
        ),
      )}
      <button type="submit" className="btn self-start" disabled={disabled}>
        Run with this input
      </button>
    </form>
  );
}

function FieldControl({ field }: { field: Exclude<InputField, { kind: "yes-no" }> }) {
  const props = { className: "field", name: field.name, required: field.required };
  switch (field.kind) {
    case "number":
      return (
        <input
          {...props}
          type="number"
          step={field.integer ? 1 : "any"}
          min={field.minimum ?? undefined}
          max={field.maximum ?? undefined}
          defaultValue={field.default ?? undefined}
        />
      );
    case "choice":
      return (
        <select {...props} defaultValue={field.default ?? ""}>
          {/* Without a default, nothing is chosen until the user chooses (or, optional, leaves it to the role). */}
          {field.default === null ? <option value="">{field.required ? "Choose…" : "—"}</option> : null}
          {field.options.map((option) => (
            <option key={option} value={option}>
              {option}
            </option>
          ))}
        </select>
      );
    case "text":
      // A field without a short bound (a document's text) gets room to paste into.
      return field.maxLength === null || field.maxLength > SHORT_FIELD_CHARS ? (
        <textarea {...props} rows={3} maxLength={field.maxLength ?? undefined} />
      ) : (
        <input {...props} maxLength={field.maxLength} />
      );
  }
}

/**
 * The form's values as the run's input, each of its field's kind: text trimmed, a number as a
 * number, yes or no as a boolean (a checkbox always says which). Text, numbers and choices
 * left empty are left out.
 */
export function formInput(form: FormData, fields: readonly InputField[]): RunInput {
  const input: RunInput = {};
  for (const field of fields) {
    const value = form.get(field.name);
    if (field.kind === "yes-no") {
      input[field.name] = value !== null;
      continue;
    }
    const text = typeof value === "string" ? value.trim() : "";
    if (text === "") continue;
    input[field.name] = field.kind === "number" ? Number(text) : text;
  }
  return input;
}
