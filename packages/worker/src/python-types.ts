import type { ProtocolJsonSchema } from "./protocol.js";

/**
 * Renders the protocol's JSON Schema (protocolJsonSchema()) as a Python module for the worker: the protocol
 * version and error codes as constants, each request's params as a frozen dataclass with a `from_json` that
 * builds it from params the schema has validated, and each result and notification as a TypedDict (the JSON
 * the worker sends). It renders the JSON Schema that zod writes for the protocol's shapes and refuses anything
 * else, so a new kind of field fails here, by name, rather than turning into a wrong Python type.
 */

type Schema = Record<string, unknown>;

type Kind = "dataclass" | "typeddict";

/** A field's Python type, and how `from_json` turns the JSON value (the expression `value`) into it. */
interface PythonType {
  annotation: string;
  convert?: (value: string) => string;
}

// Keywords that only constrain values: the worker's schema validation checks them, the Python type need not.
const CONSTRAINTS = new Set([
  "description",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "pattern",
  "format",
  "propertyNames",
]);
const STRUCTURE = new Set(["type", "properties", "required", "additionalProperties", "items", "anyOf", "enum", "const"]);
const SCALARS: Record<string, string> = { string: "str", integer: "int", number: "float", boolean: "bool", null: "None" };
const PYTHON_KEYWORDS = new Set(
  "False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield".split(
    " ",
  ),
);

const pascal = (name: string): string => name.replace(/(^|_)(\w)/g, (_, __, letter: string) => letter.toUpperCase());
const literal = (value: unknown): string => {
  if (typeof value === "string" || (typeof value === "number" && Number.isInteger(value))) return JSON.stringify(value);
  throw new Error(`cannot write ${JSON.stringify(value)} as a Python Literal`);
};
const union = (members: string[]): string => [...new Set(members)].join(" | ");
const isObject = (schema: Schema): boolean => schema.type === "object" && (schema.properties !== undefined || schema.additionalProperties === false);

class PythonModule {
  /** Class definitions in dependency order: a nested class comes before the class that uses it. */
  private readonly blocks: string[] = [];
  private readonly names = new Set<string>();
  readonly imports = new Set<string>();

  /** The Python type of a schema at `path`; objects become classes named `name`. */
  type(schema: Schema, name: string, kind: Kind, path: string): PythonType {
    for (const keyword of Object.keys(schema)) {
      if (!CONSTRAINTS.has(keyword) && !STRUCTURE.has(keyword)) throw new Error(`${path}: the keyword ${keyword} has no Python rendering`);
    }
    if (schema.const !== undefined) return this.literal([schema.const]);
    if (Array.isArray(schema.enum)) return this.literal(schema.enum);
    if (Array.isArray(schema.anyOf)) return this.union(schema.anyOf as Schema[], name, kind, path);
    if (Array.isArray(schema.type)) return { annotation: union(schema.type.map((type: string) => this.scalar(type, path))) };
    switch (schema.type) {
      case undefined:
        this.imports.add("Any");
        return { annotation: "Any" };
      case "array": {
        const item = this.type(schema.items as Schema, name.endsWith("s") ? name.slice(0, -1) : `${name}Item`, kind, `${path}[]`);
        return { annotation: `list[${item.annotation}]`, convert: item.convert && ((value) => `[${item.convert!("item")} for item in ${value}]`) };
      }
      case "object":
        if (isObject(schema)) {
          this.object(schema, name, kind, path);
          return { annotation: name, convert: kind === "dataclass" ? (value) => `${name}.from_json(${value})` : undefined };
        }
        if (kind === "dataclass") throw new Error(`${path}: a record of any keys has no dataclass rendering`);
        return { annotation: `dict[str, ${this.record(schema.additionalProperties, name, path)}]` };
      default:
        return { annotation: this.scalar(schema.type as string, path) };
    }
  }

  /**
   * A dataclass (params) or TypedDict (results, notifications) named `name`, written before its user. A nested
   * object's description is its field's comment; a top-level one's is the class docstring.
   */
  object(schema: Schema, name: string, kind: Kind, path: string, topLevel = false): void {
    if (this.names.has(name)) throw new Error(`${path}: a second Python class named ${name}`);
    this.names.add(name);
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const required = new Set((schema.required ?? []) as string[]);
    const lines: string[] = [];
    const conversions: string[] = [];
    for (const [key, property] of Object.entries(properties)) {
      if (!/^[a-z_][a-z0-9_]*$/.test(key) || PYTHON_KEYWORDS.has(key)) throw new Error(`${path}.${key}: not a Python field name`);
      const type = this.type(property, `${name}${pascal(key)}`, kind, `${path}.${key}`);
      if (typeof property.description === "string") lines.push(`    # ${property.description}`);
      if (kind === "typeddict") {
        if (!required.has(key)) this.imports.add("NotRequired");
        lines.push(`    ${key}: ${required.has(key) ? type.annotation : `NotRequired[${type.annotation}]`}`);
        continue;
      }
      const nullable = type.annotation.split(" | ").includes("None");
      const value = required.has(key) ? `data[${JSON.stringify(key)}]` : `data.get(${JSON.stringify(key)})`;
      const convert = type.convert ?? ((json: string) => json);
      conversions.push(
        `            ${key}=${type.convert && (nullable || !required.has(key)) ? `None if ${value} is None else ${convert(value)}` : convert(value)},`,
      );
      // An optional field is None when absent: the contract's own meaning of leaving it out.
      lines.push(required.has(key) ? `    ${key}: ${type.annotation}` : `    ${key}: ${nullable ? type.annotation : `${type.annotation} | None`} = None`);
    }
    const docstring = topLevel && typeof schema.description === "string" ? [`    """${schema.description}"""`, ""] : [];
    if (kind === "typeddict") {
      this.imports.add("TypedDict");
      this.blocks.push([`class ${name}(TypedDict):`, ...docstring, ...(lines.length > 0 ? lines : ["    pass"])].join("\n"));
      return;
    }
    this.imports.add("Any");
    const fromJson = [
      "    @classmethod",
      `    def from_json(cls, data: dict[str, Any]) -> "${name}":`,
      ...(conversions.length > 0 ? ["        return cls(", ...conversions, "        )"] : ["        return cls()"]),
    ];
    this.blocks.push(
      ["@dataclass(frozen=True, kw_only=True)", `class ${name}:`, ...docstring, ...lines, ...(lines.length > 0 ? [""] : []), ...fromJson].join("\n"),
    );
  }

  /** A top-level definition that is not an object: a type alias. */
  alias(name: string, type: PythonType): void {
    this.blocks.push(`${name} = ${type.annotation}`);
  }

  render(): string[] {
    return this.blocks;
  }

  private union(members: Schema[], name: string, kind: Kind, path: string): PythonType {
    const objects = members.filter(isObject);
    if (kind === "dataclass" && objects.length > 1) throw new Error(`${path}: a union of objects has no dataclass rendering`);
    const types = members.map((member, index) => {
      if (!isObject(member) || objects.length === 1) return this.type(member, name, kind, `${path}|${index}`);
      // Each object of a union is named for the value of its constant field (TrainResult → TrainResultCompleted).
      const tag = Object.values((member.properties ?? {}) as Record<string, Schema>).find((property) => typeof property.const === "string");
      return this.type(member, `${name}${tag ? pascal(tag.const as string) : `Option${index + 1}`}`, kind, `${path}|${index}`);
    });
    return { annotation: union(types.map((type) => type.annotation)), convert: types.find((type) => type.convert)?.convert };
  }

  private literal(values: unknown[]): PythonType {
    this.imports.add("Literal");
    return { annotation: `Literal[${values.map(literal).join(", ")}]` };
  }

  private scalar(type: string, path: string): string {
    const python = SCALARS[type];
    if (python === undefined) throw new Error(`${path}: the type ${type} has no Python rendering`);
    return python;
  }

  private record(values: unknown, name: string, path: string): string {
    if (values === undefined || (typeof values === "object" && values !== null && Object.keys(values).length === 0)) {
      this.imports.add("Any");
      return "Any";
    }
    return this.type(values as Schema, `${name}Value`, "typeddict", `${path}{}`).annotation;
  }
}

/** protocol_types.py: the worker's Python view of the protocol document. */
export function pythonProtocolTypes(document: ProtocolJsonSchema): string {
  const module = new PythonModule();
  const definition = (name: string): Schema => {
    const schema = document.$defs[name];
    if (schema === undefined) throw new Error(`the protocol document has no $defs/${name}`);
    return schema;
  };
  for (const name of Object.values(document["x-methods"])) {
    if (!isObject(definition(name))) throw new Error(`${name}: a request's params must be an object`);
    module.object(definition(name), name, "dataclass", name, true);
  }
  for (const name of [...Object.values(document["x-results"]), ...Object.values(document["x-notifications"])]) {
    const schema = definition(name);
    if (isObject(schema)) module.object(schema, name, "typeddict", name, true);
    else module.alias(name, module.type(schema, name, "typeddict", name));
  }
  const table = (entries: Record<string, string>): string =>
    ["{", ...Object.entries(entries).map(([key, name]) => `    ${JSON.stringify(key)}: ${name},`), "}"].join("\n");
  const typing = ["Any", "Final", "Literal", "TypedDict"].filter((name) => name === "Final" || module.imports.has(name));
  const notRequired = module.imports.has("NotRequired")
    ? ["", "if sys.version_info >= (3, 11):", "    from typing import NotRequired", "else:", "    from typing_extensions import NotRequired"]
    : [];
  return [
    `"""The worker protocol's types and constants, generated from protocol.schema.json beside this file.`,
    "",
    document.$comment,
    "",
    "A request's params arrive as a frozen dataclass, built by `from_json` from params the schema has validated;",
    'results and notifications are TypedDicts: the JSON the worker sends."""',
    "",
    ...(notRequired.length > 0 ? ["import sys"] : []),
    "from dataclasses import dataclass",
    `from typing import ${typing.join(", ")}`,
    ...notRequired,
    "",
    `PROTOCOL_VERSION: Final = ${document["x-protocol-version"]}`,
    "",
    "# JSON-RPC error codes",
    ...Object.entries(document["x-error-codes"]).map(([name, code]) => `${name}: Final = ${code}`),
    "",
    ...module.render().flatMap((block) => ["", block, ""]),
    "",
    "# Each method's params and result, and each notification's params, by name.",
    `PARAMS: Final = ${table(document["x-methods"])}`,
    `RESULTS: Final = ${table(document["x-results"])}`,
    `NOTIFICATIONS: Final = ${table(document["x-notifications"])}`,
    "",
  ].join("\n");
}
