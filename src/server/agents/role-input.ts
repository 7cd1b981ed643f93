import { z } from "zod";

/** A field of a role's input that a dashboard can ask for: a top-level text field of its input schema. */
export interface RoleInputField {
  name: string;
  /** The schema's `title` (`.meta({ title })`), else the name in words: `companyName` → "Company name". */
  label: string;
  required: boolean;
  maxLength: number | null;
}

interface JsonSchemaObject {
  type?: unknown;
  properties?: Record<string, { type?: unknown; title?: unknown; maxLength?: unknown }>;
  required?: unknown;
}

/**
 * The text fields a run of a role can be given, read from its input schema (zod's JSON
 * Schema of what it accepts): none for a role without one, or whose input is not an object.
 * Other kinds of fields (numbers, lists, objects) are left to the API, where the schema
 * checks them as before; the dashboard only offers what a text box can fill.
 */
export function roleInputFields(schema: z.ZodType | undefined): RoleInputField[] {
  if (!schema) return [];
  let fields = fieldsOf.get(schema);
  if (!fields) fieldsOf.set(schema, (fields = readFields(schema)));
  return fields;
}

/** Each schema's fields, converted once: `agent.roles` asks on every dashboard load. */
const fieldsOf = new WeakMap<z.ZodType, RoleInputField[]>();

function readFields(schema: z.ZodType): RoleInputField[] {
  let json: JsonSchemaObject;
  try {
    json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchemaObject;
  } catch {
    return [];
  }
  if (json.type !== "object" || !json.properties) return [];
  const required = new Set(Array.isArray(json.required) ? json.required : []);
  return Object.entries(json.properties)
    .filter(([, property]) => property.type === "string")
    .map(([name, property]) => ({
      name,
      label: typeof property.title === "string" ? property.title : inWords(name),
      required: required.has(name),
      maxLength: typeof property.maxLength === "number" ? property.maxLength : null,
    }));
}

/** `companyName` or `company_name` → "Company name". */
function inWords(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/[_-]+/g, " ")
    .trim()
    .toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
