import { ConflictError, InputError } from "@ats-lora/core";
import { LocalModel, type LocalModelSpec } from "@ats-lora/inference";

export interface ServedModelsOptions {
  /** Requests one model answers at once (a llama.cpp context sequence each); the rest wait their turn, first come first served. */
  sequences: number;
  contextSize?: number;
  signal?: AbortSignal;
}

/** A model the server answers with: its id in requests, and what it is. */
export interface ServedModel {
  id: string;
  /** The base's id for an adapter; null for the base. */
  parent: string | null;
  spec: LocalModelSpec;
  model: LocalModel;
}

/**
 * The base and each adapter, each in a llama.cpp context of its own, so a request for one adapter never runs on
 * another's weights; llama.cpp maps the base's file, so its weights are in memory once.
 */
export class ServedModels {
  private constructor(
    private readonly byId: Map<string, ServedModel>,
    private readonly base: LocalModelSpec,
    private readonly options: ServedModelsOptions,
  ) {}

  static async load(base: LocalModelSpec, adapters: readonly LocalModelSpec[], options: ServedModelsOptions): Promise<ServedModels> {
    const specs = [base, ...adapters];
    const names = specs.map((spec) => spec.name);
    const repeated = names.find((name, index) => names.indexOf(name) !== index);
    if (repeated !== undefined) throw new InputError(`two served models are called ${JSON.stringify(repeated)}`, { hint: "give each --adapter a name of its own: --adapter NAME=PATH" });
    const byId = new Map<string, ServedModel>();
    try {
      for (const spec of specs) {
        const model = await LocalModel.load(spec, { sequences: options.sequences, contextSize: options.contextSize, signal: options.signal });
        byId.set(spec.name, { id: spec.name, parent: spec === base ? null : base.name, spec, model });
      }
    } catch (error) {
      await Promise.all([...byId.values()].map((served) => served.model.dispose()));
      throw error;
    }
    return new ServedModels(byId, base, { sequences: options.sequences, contextSize: options.contextSize });
  }

  /** Loads one more adapter of the base while the others keep answering. */
  async add(spec: LocalModelSpec): Promise<ServedModel> {
    if (this.byId.has(spec.name)) throw new ConflictError(`a model called ${JSON.stringify(spec.name)} is served already`, { hint: "give the adapter another name" });
    if (spec.base !== this.base.base) throw new InputError(`${spec.name} runs on ${spec.base}, but this server's base is ${this.base.base}`, { hint: "serve adapters of this base only" });
    const model = await LocalModel.load(spec, this.options);
    // Two loads of one name racing: the first wins, the second frees its copy.
    if (this.byId.has(spec.name)) {
      await model.dispose();
      throw new ConflictError(`a model called ${JSON.stringify(spec.name)} is served already`);
    }
    const served = { id: spec.name, parent: this.base.name, spec, model };
    this.byId.set(spec.name, served);
    return served;
  }

  get(id: string): ServedModel | undefined {
    return this.byId.get(id);
  }

  list(): ServedModel[] {
    return [...this.byId.values()];
  }

  async dispose(): Promise<void> {
    await Promise.all(this.list().map((served) => served.model.dispose()));
  }
}
