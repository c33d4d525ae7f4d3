import { setMaxListeners } from "node:events";
import { LlamaGrammarEvaluationState, type ControlledEvaluateInputItem, type GbnfJsonSchema, type Llama, type LlamaGrammar, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from "node-llama-cpp";
import { InputError, interruptedError, RunError, throwIfAborted, type ChatMessage } from "@ats-lora/core";
import { ChatTemplate } from "./chat-template.js";
import { adapterArchitecture, createContext, disposeModel, loadBaseModel, requireFile } from "./gguf-files.js";
import { grammarJsonSchema } from "./json-schema-grammar.js";
import { deviceOf, errorsSince, gpuSetting, logMark, sharedLlama, threadCount, type Device, type GpuSetting } from "./llama.js";
import { SequencePool } from "./sequence-pool.js";
import { sampleOneAtATime } from "./serial-sampling.js";
import { firstStop, streamableLength } from "./stop-texts.js";

/** A model to run: a GGUF base and the LoRA adapters (GGUF) applied on it. */
export interface LocalModelSpec {
  /** What results call it: the adapter's name, or the base's. */
  name: string;
  /** The base model's .gguf file. */
  base: string;
  /** LoRA adapters as llama.cpp's convert_lora_to_gguf writes them, applied in this order. */
  adapters: Array<{ name: string; path: string; scale?: number }>;
}

export interface LoadOptions {
  /** Conversations generated or scored at once, one context sequence each (default 1). */
  sequences?: number;
  /** Tokens per conversation, prompt and answer together (default the model's training context, at most 4096). */
  contextSize?: number;
  /** Default: ATS_LORA_LLAMA_GPU, else "auto". */
  gpu?: GpuSetting;
  /** CPU threads (default: ATS_LORA_LLAMA_THREADS, else llama.cpp's math cores; see threadCount). */
  threads?: number;
  signal?: AbortSignal;
}

/** json_complete: the JSON value of `jsonSchema` is complete (the grammar allows nothing more). */
export type StopReason = "eos" | "stop" | "max_tokens" | "json_complete";

export interface GenerateOptions {
  maxTokens: number;
  /** 0 is greedy decoding. */
  temperature: number;
  /** The sampling seed (temperature above 0): the same seed, model and conversation give the same answer. */
  seed?: number;
  /** Nucleus sampling (default off: 1). */
  topP?: number;
  /** Only the K likeliest tokens (default off: 0). */
  topK?: number;
  /** The answer ends before the first of these texts. */
  stop?: readonly string[];
  /**
   * Decoding constrained to this JSON Schema (node-llama-cpp's JSON-schema grammar, read as grammarJsonSchema
   * translates it): the answer is one JSON value of it, or the start of one when max tokens cut it.
   */
  jsonSchema?: Record<string, unknown>;
  signal?: AbortSignal;
  /** Called as each conversation finishes, with how many have. */
  onProgress?(done: number): void;
}

export interface Generation {
  text: string;
  /** Tokens generated, the end-of-generation token included (as the Python worker counts them). */
  tokens: number;
  endedWithEos: boolean;
  stoppedBy: StopReason;
  promptTokens: number;
  /** From the start of the prompt's evaluation to the last token. */
  seconds: number;
  tokensPerSecond: number;
}

/** What a model answers: a conversation framed by the model's chat template, or a raw prompt continued as it is. */
export type PromptInput = readonly ChatMessage[] | { readonly raw: string };

/** What `stream` yields: the answer's text in pieces, then the same summary `generate` returns. */
export type StreamEvent = { type: "text"; text: string } | { type: "done"; result: Generation };

export interface ReferenceScore {
  /** Mean negative log-likelihood (nats) of the reference's tokens and the EOS after them. */
  loss: number;
  /** The tokens scored, EOS included. */
  tokens: number;
}

const DEFAULT_CONTEXT_SIZE = 4096;
/** What node-llama-cpp's JSON-schema grammar puts after the value (getGbnfGrammarForGbnfJsonSchema), and its rule. */
const JSON_GRAMMAR_END = "\n\n\n\n";
const JSON_GRAMMAR_END_RULE = String.raw`"\n\n\n\n" [\n]*`;
// Each scored token brings a probability map over the whole vocabulary; a few dozen at a time bound the memory.
const SCORED_TOKENS_PER_CALL = 32;
// A float32 softmax rounds probabilities below ~1e-45 to 0; the loss counts such a token as that improbable.
const SMALLEST_PROBABILITY = 1e-45;

/**
 * A GGUF model with its LoRA adapters in one llama.cpp context whose sequences run conversations concurrently.
 * The model's own chat template frames every conversation. Dispose it when done; `disposeLlama()` at exit.
 */
export class LocalModel {
  readonly device: Device;
  private readonly template: ChatTemplate | null;
  private readonly pool: SequencePool;
  /** Grammars by their JSON Schema's text: built once, shared by the sequences (each keeps its own state). */
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>();
  private disposed = false;

  private constructor(
    readonly spec: LocalModelSpec,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
  ) {
    this.device = deviceOf(llama);
    const source = model.fileInfo.metadata.tokenizer?.chat_template;
    const specialTokens = { bos: model.tokens.bosString ?? "", eos: model.tokens.eosString ?? "" };
    this.template = typeof source === "string" && source !== "" ? new ChatTemplate(source, specialTokens, spec.base) : null;
    this.pool = new SequencePool(Array.from({ length: context.totalSequences }, () => context.getSequence()));
  }

  static async load(spec: LocalModelSpec, options: LoadOptions = {}): Promise<LocalModel> {
    throwIfAborted(options.signal, "loading the model");
    requireFile(spec.base, "model");
    for (const adapter of spec.adapters) requireFile(adapter.path, "LoRA adapter");
    const llama = await sharedLlama(gpuSetting(options.gpu));
    const adapterArchitectures = await Promise.all(spec.adapters.map((adapter) => adapterArchitecture(llama, adapter.path)));
    const model = await loadBaseModel(llama, spec.base, options.signal);
    try {
      const architecture = model.fileInfo.metadata.general.architecture;
      spec.adapters.forEach((adapter, index) => {
        const adapterArchitecture = adapterArchitectures[index];
        if (adapterArchitecture !== undefined && adapterArchitecture !== architecture) {
          throw new InputError(`the LoRA adapter ${adapter.path} is for a ${adapterArchitecture} model, but ${spec.base} is a ${architecture} model`, {
            hint: "an adapter runs only on the base it was trained on: pass that base (--base)",
          });
        }
      });
      const context = await createContext(llama, model, {
        base: spec.base,
        adapters: spec.adapters,
        contextSize: options.contextSize ?? Math.min(model.trainContextSize, DEFAULT_CONTEXT_SIZE),
        sequences: options.sequences ?? 1,
        // node-llama-cpp's default (maxThreads) oversubscribes small machines: 40x slower on 2 cores.
        threads: threadCount(llama, options.threads),
        signal: options.signal,
      });
      if (context.totalSequences > 1) sampleOneAtATime(context);
      return new LocalModel(spec, llama, model, context);
    } catch (error) {
      await disposeModel(model);
      throw error;
    }
  }

  /** The GGUF's `tokenizer.chat_template`, or null when it has none. */
  get chatTemplate(): string | null {
    return this.template?.source ?? null;
  }

  /** Tokens per conversation. */
  get contextSize(): number {
    return this.context.contextSize;
  }

  /** Conversations run at once. */
  get sequences(): number {
    return this.context.totalSequences;
  }

  /** The conversation through the model's own chat template, ready for the assistant's answer. */
  renderChat(messages: readonly ChatMessage[]): string {
    if (this.template === null) {
      throw new InputError(`${this.spec.base} has no chat template (tokenizer.chat_template), so a conversation cannot be framed for it`, {
        hint: "use an instruction model's GGUF; llama.cpp's convert_hf_to_gguf.py carries the tokenizer's chat template into it",
      });
    }
    return this.template.render(messages);
  }

  /** Token ids of `text`; special tokens written in it (<|im_end|>) are parsed as such, as HF tokenizers do. */
  tokenize(text: string): number[] {
    return this.model.tokenize(text, true);
  }

  /** Text of token ids, special tokens left out. */
  detokenize(tokens: readonly number[]): string {
    return this.model.detokenize(tokens as Token[], false);
  }

  /** Answers each conversation (or continues each raw prompt); N sequences answer N at once, the rest wait for a free one. */
  async generate(conversations: readonly PromptInput[], options: GenerateOptions): Promise<Generation[]> {
    checkGenerateOptions(options);
    const prompts = conversations.map((conversation, index) => this.promptTokens(conversation, options.maxTokens, `conversation ${index + 1}`));
    const grammar = await this.grammarFor(options.jsonSchema);
    let done = 0;
    return this.runEach(prompts, options.signal, "generation", async (prompt, sequence, signal) => {
      const decoding = this.decode(sequence, prompt, options, grammar, signal);
      let step = await decoding.next();
      while (!step.done) step = await decoding.next();
      options.onProgress?.((done += 1));
      return step.value;
    });
  }

  /** One conversation's answer (or a raw prompt's continuation) as it is generated: text pieces, then the summary. */
  async *stream(conversation: PromptInput, options: Omit<GenerateOptions, "onProgress">): AsyncGenerator<StreamEvent, void, undefined> {
    checkGenerateOptions(options);
    const prompt = this.promptTokens(conversation, options.maxTokens, "the conversation");
    const grammar = await this.grammarFor(options.jsonSchema);
    const sequence = await this.pool.acquire(options.signal, "generation");
    const decoding = this.decode(sequence, prompt, options, grammar, options.signal);
    try {
      for (;;) {
        const step = await decoding.next();
        if (step.done) {
          yield { type: "done", result: step.value };
          return;
        }
        yield { type: "text", text: step.value };
      }
    } finally {
      // A reader that stops early must not leave the sequence evaluating for the next borrower.
      await decoding.return(undefined as unknown as Generation);
      this.pool.release(sequence);
    }
  }

  /**
   * The loss of each reference answer given its conversation: the mean negative log-likelihood of the
   * reference's tokens and the EOS after them, as the Python worker's `score` computes it.
   */
  async score(
    conversations: ReadonlyArray<readonly ChatMessage[]>,
    references: readonly string[],
    options: { signal?: AbortSignal; onProgress?(done: number): void } = {},
  ): Promise<ReferenceScore[]> {
    if (conversations.length !== references.length) throw new InputError(`${conversations.length} conversations but ${references.length} references to score`);
    const eos = this.model.tokens.eosString;
    if (eos === null) throw new InputError(`${this.spec.base} has no EOS token, so an answer's end cannot be scored`);
    const items = conversations.map((conversation, index) => {
      const answer = this.model.tokenize(references[index] + eos, true);
      return { prompt: this.promptTokens(conversation, answer.length, `conversation ${index + 1} with its reference`), answer };
    });
    let done = 0;
    return this.runEach(items, options.signal, "scoring", async ({ prompt, answer }, sequence, signal) => {
      const loss = await this.answerLoss(sequence, prompt, answer, signal);
      options.onProgress?.((done += 1));
      return { loss, tokens: answer.length };
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.context.dispose();
    await disposeModel(this.model);
  }

  /** The grammar of a JSON Schema; an InputError for one it cannot read. */
  private async grammarFor(jsonSchema: Record<string, unknown> | undefined): Promise<LlamaGrammar | undefined> {
    if (jsonSchema === undefined) return undefined;
    const key = JSON.stringify(jsonSchema);
    let grammar = this.grammars.get(key);
    if (grammar === undefined) {
      const { schema } = grammarJsonSchema(jsonSchema, "the JSON Schema");
      const mark = logMark();
      grammar = this.llama.createGrammarForJsonSchema<GbnfJsonSchema>(schema).then(
        (created) => {
          const root = created.grammar.split("\n").find((line) => line.startsWith(`${created.rootRuleName} ::=`));
          if (root?.endsWith(JSON_GRAMMAR_END_RULE) !== true) {
            throw new RunError("node-llama-cpp's JSON-schema grammar no longer ends the value with four newlines, where LocalModel stops", {
              hint: "check how the new node-llama-cpp ends the value (getGbnfGrammarForGbnfJsonSchema), then update JSON_GRAMMAR_END",
            });
          }
          return created;
        },
        (error: unknown) => {
          this.grammars.delete(key);
          throw new InputError("llama.cpp could not parse the grammar node-llama-cpp made of the JSON Schema", {
            cause: error,
            details: [error instanceof Error ? error.message : String(error), ...errorsSince(mark)],
            hint: "smaller bounds (maxLength, maxItems) usually help: llama.cpp's grammar parser limits how often a rule repeats",
          });
        },
      );
      this.grammars.set(key, grammar);
    }
    return await grammar;
  }

  private promptTokens(prompt: PromptInput, reserved: number, label: string): Token[] {
    const tokens = this.model.tokenize("raw" in prompt ? prompt.raw : this.renderChat(prompt), true);
    if (tokens.length === 0) throw new InputError(`${label} renders to no tokens`);
    if (tokens.length + reserved > this.contextSize) {
      throw new InputError(`${label} is ${tokens.length} tokens; with ${reserved} more it does not fit the context of ${this.contextSize} tokens`, {
        hint: "shorten it, ask for fewer new tokens, or load the model with a larger context size",
      });
    }
    return tokens;
  }

  /**
   * Runs `work` for every item on a borrowed sequence. The first failure stops the others; the call settles only
   * when no sequence is evaluating any more, so the model can be disposed right after.
   */
  private async runEach<Item, Result>(
    items: readonly Item[],
    signal: AbortSignal | undefined,
    what: string,
    work: (item: Item, sequence: LlamaContextSequence, signal: AbortSignal) => Promise<Result>,
  ): Promise<Result[]> {
    throwIfAborted(signal, what);
    const stop = new AbortController();
    // Every item waits for a sequence with a listener on stop.signal, and each evaluation adds one: as many as items, not a leak.
    setMaxListeners(2 * items.length + 10, stop.signal);
    const onAbort = (): void => stop.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    let failure: unknown;
    try {
      const settled = await Promise.allSettled(
        items.map(async (item) => {
          const sequence = await this.pool.acquire(stop.signal, what);
          try {
            return await work(item, sequence, stop.signal);
          } catch (error) {
            failure ??= error;
            stop.abort();
            throw error;
          } finally {
            this.pool.release(sequence);
          }
        }),
      );
      if (signal?.aborted) throw interruptedError(what);
      if (failure !== undefined) throw failure;
      return settled.map((outcome) => (outcome as PromiseFulfilledResult<Result>).value);
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Generates on one sequence: yields text as it becomes final and returns the summary. */
  private async *decode(
    sequence: LlamaContextSequence,
    prompt: Token[],
    options: GenerateOptions,
    grammar: LlamaGrammar | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<string, Generation, undefined> {
    const started = performance.now();
    await sequence.clearHistory();
    const stops = (options.stop ?? []).filter((stop) => stop !== "");
    // The grammar has the JSON value followed by "\n\n\n\n" (its stop trigger, which node-llama-cpp's LlamaChat
    // watches for): only then may EOS come. The value ends in }, ], ", a digit or a letter, so nothing is trimmed.
    const grammarEnd = grammar === undefined ? undefined : JSON_GRAMMAR_END;
    if (grammarEnd !== undefined) stops.push(grammarEnd);
    const grammarEvaluationState = grammar === undefined ? undefined : new LlamaGrammarEvaluationState({ model: this.model, grammar });
    const sampling =
      options.temperature > 0 ? { temperature: options.temperature, seed: options.seed, topK: options.topK ?? 0, topP: options.topP ?? 1 } : { temperature: 0 };
    const generated: Token[] = [];
    let text = "";
    let shown = 0;
    let stoppedBy: StopReason = "max_tokens";
    for await (const token of sequence.evaluate(prompt, { ...sampling, grammarEvaluationState, yieldEogToken: true })) {
      throwIfAborted(signal, "generation");
      generated.push(token);
      if (this.model.isEogToken(token)) {
        stoppedBy = "eos";
        break;
      }
      // The whole answer is detokenized each time: a character's UTF-8 bytes may span tokens.
      text = this.model.detokenize(generated, false);
      const stopAt = firstStop(text, stops);
      if (stopAt !== undefined) {
        stoppedBy = grammarEnd !== undefined && text.startsWith(grammarEnd, stopAt) ? "json_complete" : "stop";
        text = text.slice(0, stopAt);
        break;
      }
      if (generated.length >= options.maxTokens) break;
      const ready = streamableLength(text, stops);
      if (ready > shown) {
        yield text.slice(shown, ready);
        shown = ready;
      }
    }
    if (text.length > shown) yield text.slice(shown);
    const seconds = (performance.now() - started) / 1000;
    return {
      text,
      tokens: generated.length,
      endedWithEos: stoppedBy === "eos",
      stoppedBy,
      promptTokens: prompt.length,
      seconds,
      tokensPerSecond: seconds > 0 ? generated.length / seconds : 0,
    };
  }

  private async answerLoss(sequence: LlamaContextSequence, prompt: Token[], answer: Token[], signal: AbortSignal): Promise<number> {
    await sequence.clearHistory();
    const tokens = [...prompt, ...answer];
    // The distribution after token i predicts token i + 1: the first answer token is predicted at the prompt's last.
    const firstScored = prompt.length - 1;
    let negativeLogLikelihood = 0;
    let position = 0;
    while (position < tokens.length - 1) {
      throwIfAborted(signal, "scoring");
      const end = position < firstScored ? firstScored : Math.min(tokens.length - 1, position + SCORED_TOKENS_PER_CALL);
      const inputs: ControlledEvaluateInputItem[] = tokens
        .slice(position, end)
        .map((token, offset) => (position + offset >= firstScored ? [token, { generateNext: { probabilities: true } }] : token));
      const outputs = await sequence.controlledEvaluate(inputs);
      for (let index = Math.max(position, firstScored); index < end; index += 1) {
        const probability = outputs[index - position]?.next.probabilities?.get(tokens[index + 1]!) ?? 0;
        negativeLogLikelihood -= Math.log(Math.max(probability, SMALLEST_PROBABILITY));
      }
      position = end;
    }
    return negativeLogLikelihood / answer.length;
  }
}

function checkGenerateOptions(options: Pick<GenerateOptions, "maxTokens" | "temperature">): void {
  if (!Number.isInteger(options.maxTokens) || options.maxTokens < 1) throw new InputError(`max tokens must be a positive whole number, not ${options.maxTokens}`);
  if (!Number.isFinite(options.temperature) || options.temperature < 0) throw new InputError(`temperature must be 0 (greedy) or more, not ${options.temperature}`);
}
