import { describe, expect, it } from "vitest";
import { comparisonPairs, systemsFrom, withSchemaSystems } from "./systems.js";

describe("systems with JSON answers under their schema (--json-schema)", () => {
  it("adds a +schema twin of every model system after the others, and compares twins with twins and with their own model", () => {
    const systems = withSchemaSystems(systemsFrom({ model: "models/v2", base: "models/smollm2", baseline: ["tfidf"] }));
    expect(systems.map((system) => [system.name, "jsonSchema" in system ? (system.jsonSchema ?? false) : false])).toEqual([
      ["tuned", false],
      ["base", false],
      ["baseline-tfidf", false],
      ["tuned+schema", true],
      ["base+schema", true],
    ]);
    expect(systems[3]).toMatchObject({ role: "model", model: { model: "models/v2", base: "models/smollm2" } });
    // The first comparison stays the evaluated model against its base, as without --json-schema.
    expect(comparisonPairs(systems).map(([a, b]) => `${a.name} − ${b.name}`)).toEqual([
      "tuned − base",
      "tuned − baseline-tfidf",
      "tuned+schema − tuned",
      "tuned+schema − base+schema",
    ]);
  });

  it("leaves predictions and baselines alone, and compares the first system with each other one without twins", () => {
    const systems = systemsFrom({ predictions: "api.jsonl", baseline: ["tfidf", "embedding"] });
    expect(withSchemaSystems(systems)).toEqual(systems);
    expect(comparisonPairs(systems).map(([a, b]) => `${a.name} − ${b.name}`)).toEqual(["api − baseline-tfidf", "api − baseline-embedding"]);
  });
});
