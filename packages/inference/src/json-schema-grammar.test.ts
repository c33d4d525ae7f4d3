import { InputError, taskAnswerJsonSchema } from "@ats-lora/core";
import { describe, expect, it } from "vitest";
import { grammarJsonSchema } from "./json-schema-grammar.js";

const translate = (schema: unknown) => grammarJsonSchema(schema, "schema.json");

describe("grammarJsonSchema: a JSON Schema in the subset node-llama-cpp's grammar reads", () => {
  it("turns zod's nullable anyOf into oneOf, keeping the string's bound (node-llama-cpp would generate only null)", () => {
    expect(translate({ anyOf: [{ type: "string", maxLength: 40 }, { type: "null" }] }).schema).toEqual({ oneOf: [{ type: "string", maxLength: 40 }, { type: "null" }] });
    // A type list would lose maxLength in node-llama-cpp: one alternative per type keeps it.
    expect(translate({ type: ["string", "null"], maxLength: 40 }).schema).toEqual({ oneOf: [{ type: "string", maxLength: 40 }, { type: "null" }] });
  });

  it("keeps objects to their properties and arrays to their bounds", () => {
    const { schema, unenforced } = translate({
      type: "object",
      properties: { tags: { type: "array", items: { type: "string", minLength: 1, maxLength: 20 }, maxItems: 3 }, note: { type: "string" } },
      required: ["tags"],
      $schema: "https://json-schema.org/draft/2020-12/schema",
      description: "annotations are dropped",
    });
    expect(schema).toEqual({
      type: "object",
      properties: { tags: { type: "array", items: { type: "string", minLength: 1, maxLength: 20 }, maxItems: 3 }, note: { type: "string" } },
      additionalProperties: false,
    });
    expect(unenforced).toEqual([]);
  });

  it("enumerates a small integer range exactly, and lists the bounds it cannot enforce", () => {
    expect(translate({ type: "integer", minimum: 1900, maximum: 1903 }).schema).toEqual({ enum: [1900, 1901, 1902, 1903] });
    expect(translate({ type: "integer", exclusiveMinimum: 0, exclusiveMaximum: 3 }).schema).toEqual({ enum: [1, 2] });
    const score = translate({ type: "object", properties: { score: { type: "number", minimum: 0, maximum: 1 }, when: { type: "string", pattern: "^\\d{4}$", format: "email" } } });
    expect(score.schema).toEqual({ type: "object", properties: { score: { type: "number" }, when: { type: "string" } }, additionalProperties: false });
    expect(score.unenforced).toEqual(["score: minimum, maximum", 'when: pattern, format "email"']);
    // zod's z.int() bounds at ±MAX_SAFE_INTEGER: not worth a note.
    expect(translate({ type: "integer", minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER }).unenforced).toEqual([]);
  });

  it("makes a schema without a type any JSON value (node-llama-cpp would generate only null), and follows $defs", () => {
    expect(translate({}).schema).toMatchObject({ oneOf: [{ type: ["string", "number", "boolean", "null"] }, { type: "object", additionalProperties: true }, { type: "array" }] });
    expect(translate({ properties: { a: { type: "boolean" } } }).schema).toEqual({ type: "object", properties: { a: { type: "boolean" } }, additionalProperties: false });
    expect(translate({ definitions: { id: { type: "string", maxLength: 8 } }, type: "array", items: { $ref: "#/definitions/id" } }).schema).toEqual({
      type: "array",
      items: { $ref: "#/$defs/id" },
      $defs: { id: { type: "string", maxLength: 8 } },
    });
    expect(translate({ type: "array", uniqueItems: true, items: { allOf: [{ type: "string" }] } }).unenforced).toEqual(["(the answer): uniqueItems", "[]: allOf"]);
    // zod's z.literal: a type beside const adds nothing; a bound beside it is not read.
    expect(translate({ anyOf: [{ type: "string", const: "present" }, { type: "string", maxLength: 7, const: "now" }] })).toEqual({
      schema: { oneOf: [{ const: "present" }, { const: "now" }] },
      unenforced: ["(the answer): maxLength beside const"],
    });
  });

  it("refuses what it cannot make a grammar of, naming the schema and where", () => {
    const refusal = (schema: unknown): string => {
      try {
        translate(schema);
      } catch (error) {
        expect(error).toBeInstanceOf(InputError);
        return (error as InputError).message;
      }
      throw new Error("expected a refusal");
    };
    expect(refusal({ type: "object", properties: { bio: { type: "string", maxLength: 5000 } } })).toBe(
      "schema.json: bio has maxLength 5000; llama.cpp's grammar parser repeats at most 1999 times: lower it",
    );
    expect(refusal({ $ref: "https://example.com/other.json" })).toMatch(/^schema\.json: the schema refers to https:\/\/example\.com\/other\.json; only references to #\/\$defs/);
    expect(refusal({ type: "text" })).toMatch(/^schema\.json: the schema has type "text", not one of string, number/);
    expect(refusal({ type: "object", properties: { tags: { enum: [["a"]] } } })).toMatch(/^schema\.json: tags has the value \["a"\] in enum or const/);
    expect(refusal(false)).toBe("schema.json: the schema is `false`, which no value matches");
    expect(refusal({ type: "integer", minimum: 5, maximum: 1 })).toMatch(/allows no integer/);
  });

  it("reads the task answer schemas, leaving only the date patterns and the score's range to the check after", () => {
    expect(translate(taskAnswerJsonSchema("resume_parse")).unenforced).toEqual(["experience[].start: pattern", "experience[].end: pattern"]);
    expect(translate(taskAnswerJsonSchema("match_score")).unenforced).toEqual(["match_score: minimum, maximum"]);
  });
});
