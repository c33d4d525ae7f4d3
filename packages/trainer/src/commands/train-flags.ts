import { InvalidArgumentError } from "commander";
import type { AtsConfig, ConfigOverrides } from "@ats-lora/core";

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
      seed: flags.seed,
      early_stopping_patience: flags.earlyStoppingPatience,
      regression_field: flags.regressionField,
      regression_weight: flags.regressionWeight,
      regression_loss: flags.regressionLoss,
    },
  };
}
