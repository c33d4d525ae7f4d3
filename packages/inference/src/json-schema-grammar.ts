import fs from "node:fs";
import type { GbnfJsonSchema } from "node-llama-cpp";
import { InputError, TASK_ANSWER_SCHEMAS, taskAnswerJsonSchema } from "@ats-lora/core";

/**
 * A JSON Schema as node-llama-cpp 3.21.1's JSON-schema grammar (llama.createGrammarForJsonSchema) reads it. That
 * grammar knows a subset of JSON Schema and reads the rest differently or not at all, without a word:
 * - `anyOf` is unknown: a nullable field ({anyOf: [{type: "string"}, {type: "null"}]}, as zod writes it) has no
 *   `type`, and a schema without one generates only `null`. Here anyOf becomes oneOf (the grammar's alternation).
 * - A `type` list (["string", "null"]) loses the string's minLength/maxLength: here it becomes a oneOf per type.
 * - `format` other than date, time and date-time generates only "" (maxLength 0): here it is dropped, unenforced.
 * - A schema without `type` (`{}`, any value) generates only `null`: here it becomes any JSON value.
 * - Every property is written, required or not, in the order of `properties`; `additionalProperties` defaults to
 *   false. Both only narrow what is generated, so the answer still validates.
 * - An integer with minimum and maximum at most 256 apart becomes the enum of its values (exact); the grammar
 *   cannot bound other numbers, so `minimum`, `maximum` and `multipleOf` there are listed as unenforced.
 * - `pattern`, `uniqueItems`, `contains`, `patternProperties`, `allOf`, `not`, `if` … are not enforced: listed.
 * Kept as they are: type, properties, additionalProperties, min/maxProperties, items, prefixItems, min/maxItems,
 * min/maxLength, enum and const of plain values, oneOf, $ref to #/$defs (or #/definitions), $defs.
 */
export interface GrammarJsonSchema {
  schema: GbnfJsonSchema;
  /** Constraints the grammar does not enforce, "where: keyword, …": validate the answer against the schema after. */
  unenforced: string[];
}

const ANNOTATIONS = new Set(["$schema", "$id", "$anchor", "$comment", "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding"]);
const STRING_KEYWORDS = ["minLength", "maxLength", "format", "pattern"];
const NUMBER_KEYWORDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];
const ARRAY_KEYWORDS = ["items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains", "unevaluatedItems"];
const OBJECT_KEYWORDS = ["properties", "required", "additionalProperties", "minProperties", "maxProperties", "patternProperties", "propertyNames", "dependentRequired", "dependentSchemas", "unevaluatedProperties"];
const TYPE_KEYWORDS: Record<string, readonly string[]> = { string: STRING_KEYWORDS, number: NUMBER_KEYWORDS, integer: NUMBER_KEYWORDS, array: ARRAY_KEYWORDS, object: OBJECT_KEYWORDS, boolean: [], null: [] };
const STRUCTURE = new Set(["type", "enum", "const", "anyOf", "oneOf", "allOf", "not", "if", "then", "else", "$ref", "$defs", "definitions"]);
const GRAMMAR_FORMATS = new Set(["date", "time", "date-time"]);
const ENUMERATED_INTEGERS = 256;
/** llama.cpp's MAX_REPETITION_THRESHOLD (2000) less one: what `x{0,N}` may have as N. */
const MAX_REPETITIONS = 1999;
const ANY_VALUE: GbnfJsonSchema = { oneOf: [{ type: ["string", "number", "boolean", "null"] }, { type: "object", additionalProperties: true }, { type: "array" }] };

/** `schema` in the grammar's subset, with what it does not enforce; `source` names the schema in errors. */
export function grammarJsonSchema(schema: unknown, source: string): GrammarJsonSchema {
  const unenforced = new Map<string, string[]>();
  const note = (at: string, keyword: string): void => {
    const where = at === "" ? "(the answer)" : at;
    const keywords = unenforced.get(where) ?? [];
    if (!keywords.includes(keyword)) keywords.push(keyword);
    unenforced.set(where, keywords);
  };
  const fail = (at: string, problem: string): never => {
    throw new InputError(`${source}: ${at === "" ? "the schema" : at} ${problem}`, {
      hint: "node-llama-cpp's JSON-schema grammar reads type, properties, items, prefixItems, enum, const, anyOf/oneOf, $ref to #/$defs and the length and count bounds",
    });
  };

  const translate = (node: unknown, at: string): GbnfJsonSchema => {
    if (node === true) return ANY_VALUE;
    if (node === false) return fail(at, "is `false`, which no value matches");
    if (typeof node !== "object" || node === null || Array.isArray(node)) return fail(at, `must be a JSON Schema object, not ${JSON.stringify(node)}`);
    const schema = node as Record<string, unknown>;
    const known = new Set([...STRUCTURE, ...ANNOTATIONS, ...Object.values(TYPE_KEYWORDS).flat()]);
    for (const keyword of Object.keys(schema)) if (!known.has(keyword)) note(at, keyword);
    for (const keyword of ["allOf", "not", "if", "then", "else"]) if (keyword in schema) note(at, keyword);
    const defs = definitions(schema, at);

    let translated: GbnfJsonSchema;
    if (typeof schema.$ref === "string") {
      const name = /^#\/(?:\$defs|definitions)\/([^/]+)$/.exec(schema.$ref)?.[1];
      if (name === undefined) return fail(at, `refers to ${schema.$ref}; only references to #/$defs/NAME (or #/definitions/NAME) can be followed`);
      translated = { $ref: `#/$defs/${name}` } as GbnfJsonSchema;
      besides(schema, "$ref", at);
    } else if ("const" in schema) {
      translated = { const: literal(schema.const, at) };
      besides(schema, "const", at);
    } else if (Array.isArray(schema.enum)) {
      translated = { enum: schema.enum.map((value) => literal(value, at)) };
      besides(schema, "enum", at);
    } else if (Array.isArray(schema.anyOf) || Array.isArray(schema.oneOf)) {
      const options = [...((schema.anyOf as unknown[] | undefined) ?? []), ...((schema.oneOf as unknown[] | undefined) ?? [])];
      if (Array.isArray(schema.anyOf) && Array.isArray(schema.oneOf)) note(at, "anyOf beside oneOf (both read as one alternation)");
      translated = { oneOf: options.map((option) => translate(option, at)) };
      besides(schema, Array.isArray(schema.anyOf) ? "anyOf" : "oneOf", at);
    } else {
      const types = schema.type === undefined ? impliedTypes(schema) : Array.isArray(schema.type) ? (schema.type as unknown[]) : [schema.type];
      for (const type of types) if (typeof type !== "string" || !(type in TYPE_KEYWORDS)) fail(at, `has type ${JSON.stringify(type)}, not one of ${Object.keys(TYPE_KEYWORDS).join(", ")}`);
      if (types.length === 0) {
        for (const keyword of Object.values(TYPE_KEYWORDS).flat()) if (keyword in schema) note(at, keyword);
        translated = ANY_VALUE;
      } else {
        // Keywords for a type the value cannot have constrain nothing.
        for (const keyword of Object.values(TYPE_KEYWORDS).flat()) {
          if (keyword in schema && !types.some((type) => TYPE_KEYWORDS[type as string]!.includes(keyword)) && keyword !== "required") note(at, keyword);
        }
        const alternatives = (types as string[]).map((type) => ofType(schema, type, at));
        translated = alternatives.length === 1 ? alternatives[0]! : { oneOf: alternatives };
      }
    }
    return defs === undefined ? translated : ({ ...translated, $defs: defs } as GbnfJsonSchema);
  };

  /** Keywords beside $ref, const, enum or anyOf are not read by the grammar (a `type` beside const or enum, as zod writes it, adds nothing). */
  const besides = (schema: Record<string, unknown>, main: string, at: string): void => {
    for (const keyword of Object.keys(schema)) {
      if (keyword === main || ANNOTATIONS.has(keyword) || keyword === "$defs" || keyword === "definitions") continue;
      if ((main === "anyOf" && keyword === "oneOf") || ((main === "const" || main === "enum") && keyword === "type")) continue;
      note(at, `${keyword} beside ${main}`);
    }
  };

  const definitions = (schema: Record<string, unknown>, at: string): Record<string, GbnfJsonSchema> | undefined => {
    const all = { ...(schema.definitions as Record<string, unknown> | undefined), ...(schema.$defs as Record<string, unknown> | undefined) };
    const names = Object.keys(all);
    if (names.length === 0) return undefined;
    return Object.fromEntries(names.map((name) => [name, translate(all[name], `${at}$defs.${name}`)]));
  };

  const ofType = (schema: Record<string, unknown>, type: string, at: string): GbnfJsonSchema => {
    if (type === "string") {
      if ("pattern" in schema) note(at, "pattern");
      if (typeof schema.format === "string" && GRAMMAR_FORMATS.has(schema.format)) return { type: "string", format: schema.format as "date" | "time" | "date-time" };
      if ("format" in schema) note(at, `format ${JSON.stringify(schema.format)}`);
      return { type: "string", ...pick(schema, ["minLength", "maxLength"], at) };
    }
    if (type === "integer") {
      const low = bound(schema, "minimum", "exclusiveMinimum", 1);
      const high = bound(schema, "maximum", "exclusiveMaximum", -1);
      if (low !== undefined && high !== undefined && high < low) fail(at, `allows no integer: its minimum is above its maximum`);
      if (low !== undefined && high !== undefined && !("multipleOf" in schema) && high - low < ENUMERATED_INTEGERS) {
        return { enum: Array.from({ length: high - low + 1 }, (_, index) => low + index) };
      }
      numberBounds(schema, at);
      return { type: "integer" };
    }
    if (type === "number") {
      numberBounds(schema, at);
      return { type: "number" };
    }
    if (type === "array") {
      for (const keyword of ["uniqueItems", "contains", "minContains", "maxContains", "unevaluatedItems"]) if (keyword in schema) note(at, keyword);
      const prefixItems = Array.isArray(schema.prefixItems) ? schema.prefixItems.map((item, index) => translate(item, `${at}[${index}]`)) : undefined;
      const counts = pick(schema, ["minItems", "maxItems"], at);
      // items: false after prefixItems closes the tuple.
      if (schema.items === false && prefixItems !== undefined) return { type: "array", prefixItems, ...counts, maxItems: prefixItems.length };
      const items = schema.items === undefined ? undefined : translate(schema.items, `${at}[]`);
      return { type: "array", ...(items === undefined ? {} : { items }), ...(prefixItems === undefined ? {} : { prefixItems }), ...counts } as GbnfJsonSchema;
    }
    if (type === "object") {
      for (const keyword of ["patternProperties", "propertyNames", "dependentRequired", "dependentSchemas", "unevaluatedProperties"]) if (keyword in schema) note(at, keyword);
      const properties = (schema.properties ?? {}) as Record<string, unknown>;
      if (typeof properties !== "object" || Array.isArray(properties)) fail(at, "has `properties` that is not an object");
      const translatedProperties = Object.fromEntries(Object.entries(properties).map(([name, property]) => [name, translate(property, at === "" ? name : `${at}.${name}`)]));
      const extra = schema.additionalProperties;
      // JSON Schema allows other keys unless told; the grammar only when told. An object with properties keeps to them.
      const additionalProperties = extra === undefined ? Object.keys(properties).length === 0 : typeof extra === "boolean" ? extra : translate(extra, `${at}{*}`);
      return { type: "object", properties: translatedProperties, additionalProperties, ...pick(schema, ["minProperties", "maxProperties"], at) } as GbnfJsonSchema;
    }
    return { type: type as "boolean" | "null" };
  };

  const numberBounds = (schema: Record<string, unknown>, at: string): void => {
    for (const keyword of NUMBER_KEYWORDS) {
      // zod's z.int() bounds every integer at ±Number.MAX_SAFE_INTEGER: no constraint worth a note.
      if (keyword in schema && Math.abs(Number(schema[keyword])) !== Number.MAX_SAFE_INTEGER) note(at, keyword);
    }
  };

  const pick = (schema: Record<string, unknown>, keywords: readonly string[], at: string): Record<string, number> => {
    const picked: Record<string, number> = {};
    for (const keyword of keywords) {
      if (!(keyword in schema)) continue;
      const value = schema[keyword];
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0) fail(at, `has ${keyword} ${JSON.stringify(value)}, not a whole number of 0 or more`);
      // The grammar writes a bound as a repetition {0,N}; llama.cpp's grammar parser refuses N of 2000 or more.
      if ((value as number) > MAX_REPETITIONS) fail(at, `has ${keyword} ${value as number}; llama.cpp's grammar parser repeats at most ${MAX_REPETITIONS} times: lower it`);
      picked[keyword] = value as number;
    }
    return picked;
  };

  const literal = (value: unknown, at: string): string | number | boolean | null => {
    if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
    return fail(at, `has the value ${JSON.stringify(value)} in enum or const; the grammar writes only strings, numbers, booleans and null there`);
  };

  const translated = translate(schema, "");
  return { schema: translated, unenforced: [...unenforced].map(([where, keywords]) => `${where}: ${keywords.join(", ")}`) };
}

/** Without `type`, the type whose keywords the schema uses (JSON Schema would allow any value; a grammar wants one). */
function impliedTypes(schema: Record<string, unknown>): string[] {
  const families = [
    ["object", OBJECT_KEYWORDS],
    ["array", ARRAY_KEYWORDS],
    ["string", STRING_KEYWORDS],
  ] as const;
  const used = families.filter(([, keywords]) => keywords.some((keyword) => keyword in schema)).map(([type]) => type);
  return used.length === 1 ? [used[0]!] : [];
}

/** An integer bound as an inclusive whole number: exclusive bounds move one step in. */
function bound(schema: Record<string, unknown>, inclusive: string, exclusive: string, step: 1 | -1): number | undefined {
  const candidates: number[] = [];
  if (typeof schema[inclusive] === "number") candidates.push(step === 1 ? Math.ceil(schema[inclusive]) : Math.floor(schema[inclusive]));
  if (typeof schema[exclusive] === "number") candidates.push(step === 1 ? Math.floor(schema[exclusive]) + 1 : Math.ceil(schema[exclusive]) - 1);
  if (candidates.length === 0) return undefined;
  return step === 1 ? Math.max(...candidates) : Math.min(...candidates);
}

export interface JsonSchemaArgument {
  /** What the schema is, for notes: "the resume_parse answer schema", or the file. */
  source: string;
  schema: Record<string, unknown>;
  /** grammarJsonSchema's unenforced constraints. */
  unenforced: string[];
}

/**
 * A `--json-schema` value: a task whose answer is JSON (core's task answer schemas) or a JSON Schema file, read
 * and checked now, so a bad file fails before a model loads.
 */
export function readJsonSchemaArgument(value: string): JsonSchemaArgument {
  const tasks = Object.keys(TASK_ANSWER_SCHEMAS);
  const task = taskAnswerJsonSchema(value);
  if (task !== undefined) {
    const source = `the ${value} answer schema`;
    return { source, schema: task, unenforced: grammarJsonSchema(task, source).unenforced };
  }
  if (!value.toLowerCase().endsWith(".json") && !fs.existsSync(value)) {
    throw new InputError(`--json-schema ${value} is neither a task with a JSON answer (${tasks.join(", ")}) nor a .json file`, {
      hint: "name a task, or a file holding a JSON Schema",
    });
  }
  let text: string;
  try {
    text = fs.readFileSync(value, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(code === "ENOENT" ? `no such JSON Schema file: ${value}` : `cannot read the JSON Schema file ${value}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new InputError(`${value} is not JSON: ${(error as Error).message}`, { hint: "a JSON Schema file holds one JSON object" });
  }
  if (parsed === true) parsed = {};
  const { unenforced } = grammarJsonSchema(parsed, value);
  return { source: value, schema: parsed as Record<string, unknown>, unenforced };
}
