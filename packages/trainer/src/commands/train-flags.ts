import { InvalidArgumentError, Option, type Command } from "commander";
import { ATTN_IMPLEMENTATIONS, InputError, positiveInt, STRATEGIES, nonNegativeInt, type AtsConfig, type ConfigOverrides } from "@ats-lora/core";

export const moduleList = (value: string): string[] => {
  const modules = value.split(",").map((name) => name.trim()).filter(Boolean);
  if (modules.length === 0) throw new InvalidArgumentError("must be auto or a comma-separated list of module names");
  return modules;
};

/** The flags as commander parses them: the run's folders, and the configuration keys they set (sections below). */
export interface TrainFlags {
  trainingData?: string;
  outputDir?: string;
  resume?: boolean;
  overwrite?: boolean;
  // model.*
  base?: string;
  quantization?: AtsConfig["model"]["quantization"];
  // lora.*
  loraR?: number;
  loraAlpha?: number;
  loraDropout?: number;
  targetModules?: string[];
  // training.*
  format?: AtsConfig["training"]["format"];
  epochs?: number;
  batchSize?: number;
  maxSteps?: number;
  lr?: number;
  gradAccum?: number;
  warmupSteps?: number;
  maxSeqLength?: number;
  packing?: boolean;
  gradientCheckpointing?: boolean;
  attnImplementation?: AtsConfig["training"]["attn_implementation"];
  devices?: number;
  strategy?: AtsConfig["training"]["strategy"];
  nodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
  dryRun?: boolean;
  seed?: number;
  earlyStoppingPatience?: number;
  regressionField?: string;
  regressionWeight?: number;
  regressionLoss?: AtsConfig["training"]["regression_loss"];
}

/** The flags that are settings, as the configuration's top layer: every setting reaches the run through it. */
export function configOverrides(flags: TrainFlags): ConfigOverrides {
  return {
    model: { base: flags.base, quantization: flags.quantization },
    lora: { r: flags.loraR, alpha: flags.loraAlpha, dropout: flags.loraDropout, target_modules: flags.targetModules },
    training: {
      format: flags.format,
      epochs: flags.epochs,
      batch_size: flags.batchSize,
      max_steps: flags.maxSteps,
      learning_rate: flags.lr,
      grad_accum: flags.gradAccum,
      warmup_steps: flags.warmupSteps,
      max_seq_length: flags.maxSeqLength,
      packing: flags.packing,
      gradient_checkpointing: flags.gradientCheckpointing,
      attn_implementation: flags.attnImplementation,
      devices: flags.devices,
      strategy: flags.strategy,
      seed: flags.seed,
      early_stopping_patience: flags.earlyStoppingPatience,
      regression_field: flags.regressionField,
      regression_weight: flags.regressionWeight,
      regression_loss: flags.regressionLoss,
    },
  };
}

/** The flags for speed, memory and several devices or machines. */
export function addScaleOptions(command: Command): Command {
  return command
    // Both spellings, so that neither is the default and the configuration decides when none is typed.
    .option("--gradient-checkpointing", "recompute activations in the backward pass: less memory (training.gradient_checkpointing)")
    .option("--no-gradient-checkpointing", "keep every layer's activations: faster, more memory")
    .addOption(new Option("--attn-implementation <kind>", "attention kernel (training.attn_implementation)").choices(ATTN_IMPLEMENTATIONS))
    .option("--devices <n>", "processes on this machine, one per GPU, under torchrun (training.devices)", positiveInt)
    .addOption(new Option("--strategy <kind>", "how several devices share the run: ddp or fsdp (training.strategy)").choices(STRATEGIES))
    .option("--nodes <n>", "machines in the run (torchrun's nodes); each runs this command with its --node-rank", positiveInt)
    .option("--node-rank <r>", "this machine's place, 0 to nodes-1; node 0 holds the run and reports it", nonNegativeInt)
    .option("--master-addr <host>", "node 0's address, reachable from every node (several nodes)")
    .option("--master-port <port>", "a free port on node 0 (default 29500)", positiveInt)
    .option("--dry-run", "load the model's config only and print the memory plan: the estimated peak per device against the free memory");
}

/** The machines of a multi-node run, or undefined on one machine; refuses a rank outside the nodes. */
export function nodesFromFlags(flags: TrainFlags): { nodes: number; nodeRank: number; masterAddr?: string; masterPort?: number } | undefined {
  const nodes = flags.nodes ?? 1;
  const nodeRank = flags.nodeRank ?? 0;
  if (nodeRank >= nodes) throw new InputError(`--node-rank ${nodeRank} is not below --nodes ${nodes}`, { hint: "number the machines 0 to nodes-1" });
  if (nodes === 1) return undefined;
  if (flags.masterAddr === undefined) throw new InputError("--nodes above 1 needs --master-addr", { hint: "give node 0's address, the same on every node" });
  return { nodes, nodeRank, masterAddr: flags.masterAddr, masterPort: flags.masterPort };
}
