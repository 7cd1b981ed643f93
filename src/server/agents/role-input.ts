import { z } from "zod";

interface FieldBase {
  name: string;
  /** The schema's `title` (`.meta({ title })`), else the name in words: `companyName` → "Company name". */
  label: string;
  /** The run cannot start without it: the schema requires it and gives it no default. */
  required: boolean;
}

/**
 * A field of a role's input that a dashboard can ask for: a top-level field of its input
 * schema that one form control fills, with what the schema says of its values.
 */
export type RoleInputField =
  | (FieldBase & { kind: "text"; maxLength: number | null })
  | (FieldBase & {
      kind: "number";
      integer: boolean;
      minimum: number | null;
      maximum: number | null;
      default: number | null;
    })
  | (FieldBase & { kind: "choice"; options: string[]; default: string | null })
  | (FieldBase & { kind: "yes-no"; default: boolean });

interface JsonSchemaProperty {
  type?: unknown;
  title?: unknown;
  maxLength?: unknown;
  minimum?: unknown;
  maximum?: unknown;
  exclusiveMinimum?: unknown;
  exclusiveMaximum?: unknown;
  enum?: unknown;
  const?: unknown;
  default?: unknown;
}

interface JsonSchemaObject {
  type?: unknown;
  properties?: Record<string, JsonSchemaProperty>;
  required?: unknown;
}

/**
 * The fields a run of a role can be given, read from its input schema (zod's JSON Schema of
 * what it accepts): text, numbers, one of a few words, yes or no. None for a role without a
 * schema, or whose input is not an object. Other kinds of fields (lists, objects, dates) are
 * left to the API, where the schema checks them as before.
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
  return Object.entries(json.properties).flatMap(([name, property]) => {
    const base = {
      name,
      label: typeof property.title === "string" ? property.title : inWords(name),
      required: required.has(name),
    };
    const field = fieldOf(base, property);
    return field ? [field] : [];
  });
}

const numberOr = (value: unknown, or: number | null = null) => (typeof value === "number" ? value : or);

function fieldOf(base: FieldBase, property: JsonSchemaProperty): RoleInputField | null {
  // A constant needs no asking.
  if (property.const !== undefined) return null;
  if (property.type === "string" && Array.isArray(property.enum)) {
    const options = property.enum.filter((option): option is string => typeof option === "string");
    if (options.length === 0) return null;
    const given = property.default;
    return {
      ...base,
      kind: "choice",
      options,
      default: typeof given === "string" && options.includes(given) ? given : null,
    };
  }
  if (property.type === "string") return { ...base, kind: "text", maxLength: numberOr(property.maxLength) };
  if (property.type === "boolean") return { ...base, kind: "yes-no", default: property.default === true };
  if (property.type === "number" || property.type === "integer") {
    const integer = property.type === "integer";
    // Whole numbers past an exclusive bound start at the next one in; of any number, the form
    // cannot say it (the API does).
    const after = (bound: unknown) => (integer && typeof bound === "number" ? Math.floor(bound) + 1 : null);
    const before = (bound: unknown) => (integer && typeof bound === "number" ? Math.ceil(bound) - 1 : null);
    return {
      ...base,
      kind: "number",
      integer,
      minimum: numberOr(property.minimum, after(property.exclusiveMinimum)),
      maximum: numberOr(property.maximum, before(property.exclusiveMaximum)),
      default: numberOr(property.default),
    };
  }
  return null;
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
