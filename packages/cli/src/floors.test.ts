import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// DESIGN.md's floors: a package depends only on packages on lower floors; no arrow back up, no circle.
const FLOORS: Record<string, number> = {
  core: 0,
  feedback: 1,
  embeddings: 1,
  evaluator: 2,
  "dataset-builder": 2,
  rag: 2,
  worker: 1,
  tracking: 1,
  trainer: 2,
  models: 2,
  inference: 2,
  serve: 3,
  cli: 4,
};

const PACKAGES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const packages = fs.readdirSync(PACKAGES).filter((name) => fs.existsSync(path.join(PACKAGES, name, "package.json")));

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [full] : [];
  });
}

/** The module specifiers a TypeScript file imports or re-exports (static and dynamic). */
function specifiers(file: string): string[] {
  const text = fs.readFileSync(file, "utf8");
  const found = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"/g), ...text.matchAll(/import\(\s*"([^"]+)"\s*\)/g)];
  return found.map((match) => match[1]!);
}

describe("package floors", () => {
  it("knows every package's floor", () => {
    expect(packages.filter((name) => FLOORS[name] === undefined)).toEqual([]);
  });

  it("declares only dependencies on lower floors", () => {
    const upward: string[] = [];
    for (const name of packages) {
      const manifest = JSON.parse(fs.readFileSync(path.join(PACKAGES, name, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
      for (const dependency of Object.keys(manifest.dependencies ?? {})) {
        if (!dependency.startsWith("@ats-lora/")) continue;
        const target = dependency.slice("@ats-lora/".length);
        if (!(FLOORS[target]! < FLOORS[name]!)) upward.push(`${name} (floor ${FLOORS[name]}) → ${target} (floor ${FLOORS[target]})`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("imports only declared packages, through their exports, never another package's files", () => {
    const problems: string[] = [];
    for (const name of packages) {
      const manifest = JSON.parse(fs.readFileSync(path.join(PACKAGES, name, "package.json"), "utf8")) as {
        dependencies?: Record<string, string>;
        devDependencies?: Record<string, string>;
      };
      const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.devDependencies ?? {})]);
      for (const file of sources(path.join(PACKAGES, name, "src"))) {
        for (const specifier of specifiers(file)) {
          const where = path.relative(PACKAGES, file);
          if (specifier.startsWith("@ats-lora/")) {
            const target = specifier.split("/").slice(0, 2).join("/");
            // Tests may use a higher floor's package to drive a real end-to-end path; production code may not.
            if (target !== `@ats-lora/${name}` && !declared.has(target) && !file.endsWith(".test.ts")) problems.push(`${where}: ${specifier} is not a dependency of ${name}`);
            if (/\/(src|dist)\//.test(specifier)) problems.push(`${where}: ${specifier} reaches into the package's files`);
          } else if (specifier.startsWith(".")) {
            const resolved = path.resolve(path.dirname(file), specifier);
            if (!resolved.startsWith(path.join(PACKAGES, name) + path.sep)) problems.push(`${where}: ${specifier} leaves the package`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("has no import circle between the modules of a package", () => {
    const circles: string[] = [];
    for (const name of packages) {
      const files = sources(path.join(PACKAGES, name, "src")).filter((file) => !file.endsWith(".test.ts"));
      const edges = new Map(
        files.map((file) => [
          file,
          specifiers(file)
            .filter((specifier) => specifier.startsWith("."))
            .map((specifier) => path.resolve(path.dirname(file), specifier).replace(/\.js$/, ".ts"))
            .filter((target) => files.includes(target)),
        ]),
      );
      const state = new Map<string, "open" | "done">();
      const visit = (file: string, trail: string[]): void => {
        if (state.get(file) === "done") return;
        if (state.get(file) === "open") {
          circles.push(trail.slice(trail.indexOf(file)).concat(file).map((f) => path.relative(PACKAGES, f)).join(" → "));
          return;
        }
        state.set(file, "open");
        for (const next of edges.get(file) ?? []) visit(next, [...trail, file]);
        state.set(file, "done");
      };
      for (const file of files) visit(file, []);
    }
    expect(circles).toEqual([]);
  });
});

describe("command files", () => {
  it("stay thin: flags, one operation, rendering — 120 lines at most", () => {
    const long: string[] = [];
    for (const name of packages) {
      const src = path.join(PACKAGES, name, "src");
      const commandDir = path.join(src, "commands");
      const files = [path.join(src, "command.ts"), ...(fs.existsSync(commandDir) ? sources(commandDir) : [])].filter(
        (file) => fs.existsSync(file) && !file.endsWith(".test.ts"),
      );
      for (const file of files) {
        const lines = fs.readFileSync(file, "utf8").split("\n").length - 1;
        if (lines > 120) long.push(`${path.relative(PACKAGES, file)}: ${lines} lines`);
      }
    }
    expect(long).toEqual([]);
  });
});
