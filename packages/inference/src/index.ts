export {
  LocalModel,
  type Generation,
  type GenerateOptions,
  type LoadOptions,
  type LocalModelSpec,
  type PromptInput,
  type ReferenceScore,
  type StopReason,
  type StreamEvent,
} from "./local-model.js";
export { disposeLlama, gpuSetting, type Device, type GpuSetting } from "./llama.js";
export { llamaModelRunner, type LlamaModelRunner, type LlamaModelRunnerOptions, type RunnerModelRef } from "./model-runner.js";
export { chatOnce, describeSpec, type ChatAnswer, type ChatInput } from "./chat.js";
export { grammarJsonSchema, readJsonSchemaArgument, type GrammarJsonSchema, type JsonSchemaArgument } from "./json-schema-grammar.js";
