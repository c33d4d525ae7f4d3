import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

// The real CLI and the real Python worker, on a tiny model the worker makes and the bundled sample data.
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "dist", "bin.js");
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const W = fs.mkdtempSync(path.join(os.tmpdir(), "ats-train-"));
const TINY = path.join(W, "models", "tiny");
// Quick settings for the tests that are about control flow, not learning.
const QUICK = ["--batch-size", "2", "--grad-accum", "1"];
const QUICK_ENV = { ATS_LORA_TRAINING__GRADIENT_CHECKPOINTING: "false", ATS_LORA_TRAINING__LOGGING_STEPS: "1" };

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [BIN, "--workdir", W, ...args], { encoding: "utf8", env: { ...process.env, ...env } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the CLI with --json, handing each NDJSON event to `onEvent` as it arrives. */
function stream(args: string[], env: NodeJS.ProcessEnv, onEvent: (event: Record<string, unknown>, child: ReturnType<typeof spawn>) => void) {
  const child = spawn(process.execPath, [BIN, "--workdir", W, "--json", ...args], { env: { ...process.env, ...env } });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const events: Array<Record<string, unknown>> = [];
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const event = JSON.parse(line) as Record<string, unknown>;
    events.push(event);
    onEvent(event, child);
  });
  return new Promise<{ code: number | null; events: typeof events; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, events, stderr })),
  );
}

beforeAll(() => {
  const created = cli(["models", "create-tiny", TINY]);
  expect(created.code, created.stderr).toBe(0);
  const samples = ["interactions.jsonl", "gold_pairs.jsonl"].map((name) => path.join(REPO, "data", "samples", name));
  expect(cli(["collect", "import", ...samples]).code).toBe(0);
  const built = cli(["build-db"]);
  expect(built.code, built.stderr).toBe(0);
}, 600_000);

describe("ats-lora train (CLI → Python worker → TRL/PEFT)", () => {
  it("trains an adapter from build-db's output as documented, and the loss goes down", () => {
    const output = path.join(W, "models", "v1");
    // The documented defaults (4-bit on the CPU, gradient checkpointing, batch 4, the validation split) but one
    // batch per step: a quarter of the tokens, and still 30 optimizer steps.
    const run = cli(["train", "--base", TINY, "--output_dir", output, "--max-steps", "30", "--grad-accum", "1", "--json"]);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    for (const file of ["adapter_config.json", "adapter_model.safetensors", "metrics.json", "train.log", "loss_curve.jsonl", "training_args.json"]) {
      expect(fs.existsSync(path.join(output, file)), file).toBe(true);
    }
    const metrics = JSON.parse(fs.readFileSync(path.join(output, "metrics.json"), "utf8"));
    expect(metrics.steps).toBe(30);
    expect(metrics.train_loss_last).toBeLessThan(metrics.train_loss_first);
    expect(metrics.eval_loss).toBeGreaterThan(0);
    const events = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(events[0].event).toBe("started");
    expect(events.filter((event) => event.event === "progress").length).toBeGreaterThanOrEqual(30);
    expect(events.at(-1)).toMatchObject({ event: "result", status: "completed" });
    expect(JSON.parse(fs.readFileSync(path.join(output, "adapter_config.json"), "utf8"))).toMatchObject({
      peft_type: "LORA",
      r: 16,
      lora_alpha: 32,
      target_modules: expect.arrayContaining(["q_proj", "k_proj", "v_proj", "o_proj"]),
    });
  }, 600_000);

  it("stops on Ctrl-C with a checkpoint (exit 130), and --resume reaches the same final step", async () => {
    const output = path.join(W, "models", "interrupted");
    const args = ["train", "--base", TINY, "--output-dir", output, "--max-steps", "10", ...QUICK];
    let sent = false;
    const first = await stream(args, QUICK_ENV, (event, child) => {
      if (!sent && event.event === "progress" && (event.step as number) >= 3) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    expect(first.code, first.stderr.slice(-2000)).toBe(130);
    const result = first.events.at(-1)!;
    expect(result).toMatchObject({ event: "result", status: "cancelled" });
    expect(result.resume_command).toContain("--resume");
    expect(fs.existsSync(result.checkpoint as string)).toBe(true);
    const stoppedAt = result.step as number;
    expect(stoppedAt).toBeLessThan(10);

    const resumed = await stream([...args, "--resume"], QUICK_ENV, () => undefined);
    expect(resumed.code, resumed.stderr.slice(-2000)).toBe(0);
    const steps = resumed.events.filter((event) => event.event === "progress").map((event) => event.step);
    expect(steps[0]).toBe(stoppedAt);
    expect(resumed.events.at(-1)).toMatchObject({ status: "completed", metrics: { steps: 10 } });
  }, 600_000);

  it("reports a worker killed with kill -9 (exit 1, the end of its log), and --resume continues from the last checkpoint", async () => {
    const output = path.join(W, "models", "killed");
    const args = ["train", "--base", TINY, "--output-dir", output, "--max-steps", "10", ...QUICK];
    const env = { ...QUICK_ENV, ATS_LORA_TRAINING__SAVE_STEPS: "3" };
    let workerPid: number | undefined;
    let killed = false;
    const first = await stream(args, env, (event) => {
      if (event.event === "started") workerPid = event.worker_pid as number;
      if (!killed && event.event === "checkpoint" && (event.step as number) === 6) {
        killed = true;
        process.kill(workerPid!, "SIGKILL");
      }
    });
    expect(first.code).toBe(1);
    expect(first.stderr).toContain("the worker was killed by SIGKILL");
    expect(first.stderr).toMatch(/worker: /);
    const resumed = await stream([...args, "--resume"], env, () => undefined);
    expect(resumed.code, resumed.stderr.slice(-2000)).toBe(0);
    const steps = resumed.events.filter((event) => event.event === "progress").map((event) => event.step);
    expect(steps[0]).toBe(6);
    expect(resumed.events.at(-1)).toMatchObject({ status: "completed", metrics: { steps: 10, resumed_from: expect.stringContaining("checkpoint-6") } });
  }, 600_000);

  it("names a bad --base and bad training data, exit 2", () => {
    const missing = cli(["train", "--base", path.join(W, "no-such-model"), "--output-dir", path.join(W, "models", "x"), ...QUICK]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no such folder");

    // A long prompt is cut to fit; only a window too small for any answer token is refused.
    const short = cli(["train", "--base", TINY, "--output-dir", path.join(W, "models", "s"), "--max-seq-length", "2", ...QUICK], QUICK_ENV);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain("training rows were dropped: their prompts fill the 2 tokens");

    const data = path.join(W, "bad-pairs");
    fs.mkdirSync(path.join(data, "sft"), { recursive: true });
    fs.writeFileSync(path.join(data, "sft", "train.jsonl"), '{"prompt": "p", "completion": "c", "task": "t", "source_ids": ["a"]}\n{"prompt": "p", "task": "t", "source_ids": ["a"]}\n');
    const bad = cli(["train", "--base", TINY, "--training_data", data, "--output-dir", path.join(W, "models", "y")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${path.join(data, "sft", "train.jsonl")}:2: completion`);

    const noData = cli(["train", "--base", TINY, "--training-data", path.join(W, "nothing"), "--output-dir", path.join(W, "models", "z")]);
    expect(noData.code).toBe(2);
    expect(noData.stderr).toContain("no sft training data");
  }, 120_000);

  it("refuses a non-empty output folder without --resume or --overwrite (exit 2), and --overwrite starts over", () => {
    const output = path.join(W, "models", "twice");
    const args = ["train", "--base", TINY, "--output-dir", output, ...QUICK, "--json"];
    const first = cli([...args, "--max-steps", "4"], { ...QUICK_ENV, ATS_LORA_TRAINING__SAVE_STEPS: "2" });
    expect(first.code, first.stderr.slice(-2000)).toBe(0);
    const again = cli([...args, "--max-steps", "2"], QUICK_ENV);
    expect(again.code, again.stderr.slice(-2000)).toBe(2);
    expect(again.stderr).toContain(`the output folder ${output} is not empty`);
    expect(again.stderr).toMatch(/--resume.*--overwrite/);
    const over = cli([...args, "--max-steps", "2", "--overwrite"], QUICK_ENV);
    expect(over.code, over.stderr.slice(-2000)).toBe(0);
    // Nothing of the first run is left: its step-4 checkpoint is gone.
    expect(fs.readdirSync(path.join(output, "checkpoints")).filter((name) => name.includes("checkpoint"))).toEqual(["checkpoint-2"]);
    expect(JSON.parse(fs.readFileSync(path.join(output, "metrics.json"), "utf8")).steps).toBe(2);
  }, 600_000);

  it("refuses --resume with other settings than the checkpoints', naming them (exit 2); the same settings continue", () => {
    const output = path.join(W, "models", "settings");
    const args = ["train", "--base", TINY, "--output-dir", output, ...QUICK, "--json"];
    const env = { ...QUICK_ENV, ATS_LORA_TRAINING__SAVE_STEPS: "2" };
    expect(cli([...args, "--max-steps", "2"], env).code).toBe(0);
    const other = cli([...args, "--max-steps", "4", "--resume", "--lr", "1e-3"], env);
    expect(other.code, other.stderr.slice(-2000)).toBe(2);
    expect(other.stderr).toContain("were trained with other settings");
    expect(other.stderr).toContain("--lr (training.learning_rate): 0.0002 in the checkpoints, 0.001 now");
    const same = cli([...args, "--max-steps", "4", "--resume"], env);
    expect(same.code, same.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(same.stdout.trim().split("\n").at(-1)!)).toMatchObject({ status: "completed", metrics: { steps: 4, resumed_from: expect.stringContaining("checkpoint-2") } });
  }, 600_000);

  it("locks the output folder: a run into a folder in use is refused naming the holder, a stale lock is taken over", async () => {
    const output = path.join(W, "models", "locked");
    fs.mkdirSync(output, { recursive: true });
    const lock = path.join(output, ".ats-lora-train.lock");
    const holder = spawn("sleep", ["60"]);
    try {
      fs.writeFileSync(lock, JSON.stringify({ pid: holder.pid, host: os.hostname(), started_at: "2025-01-01T00:00:00Z" }));
      const refused = cli(["train", "--base", TINY, "--output-dir", output, "--max-steps", "1", ...QUICK], QUICK_ENV);
      expect(refused.code, refused.stderr.slice(-2000)).toBe(2);
      expect(refused.stderr).toContain(`the output folder ${output} is in use by another training run (pid ${holder.pid} on ${os.hostname()}`);
    } finally {
      holder.kill("SIGKILL");
    }
    await new Promise((resolve) => holder.once("exit", resolve));
    // The holder is gone: its lock is stale.
    const taken = cli(["train", "--base", TINY, "--output-dir", output, "--max-steps", "1", ...QUICK], QUICK_ENV);
    expect(taken.code, taken.stderr.slice(-2000)).toBe(0);
    expect(fs.existsSync(lock)).toBe(false);

    // Two runs started together into one new folder: one trains, the other is refused.
    const together = path.join(W, "models", "together");
    const runs = await Promise.all(
      [1, 2].map(() => stream(["train", "--base", TINY, "--output-dir", together, "--max-steps", "2", ...QUICK], QUICK_ENV, () => undefined)),
    );
    expect(runs.map((run) => run.code).sort()).toEqual([0, 2]);
    expect(runs.find((run) => run.code === 2)!.stderr).toMatch(/is in use by another training run|is not empty/);
  }, 600_000);

  it("gives two runs started together without --output-dir two ats_lora_vN folders", async () => {
    const runs = await Promise.all(
      [1, 2].map(() => stream(["train", "--base", TINY, "--max-steps", "1", ...QUICK], QUICK_ENV, () => undefined)),
    );
    for (const run of runs) expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const folders = runs.map((run) => run.events.find((event) => event.event === "started")!.output_dir as string);
    expect(new Set(folders).size).toBe(2);
    for (const folder of folders) expect(path.basename(folder)).toMatch(/^ats_lora_v\d+$/);
  }, 600_000);

  it("refuses --max-seq-length beyond the model's positions, naming the flag, the value and the limit (exit 2)", () => {
    const long = cli(["train", "--base", TINY, "--output-dir", path.join(W, "models", "long"), "--max-seq-length", "4096", "--max-steps", "1", ...QUICK], QUICK_ENV);
    expect(long.code, long.stderr.slice(-2000)).toBe(2);
    expect(long.stderr).toContain("--max-seq-length 4096 is more than the 2048 positions of the model");
    expect(long.stderr).toContain("max_position_embeddings");
  }, 120_000);

  it("reports the machine with doctor", () => {
    const doctor = cli(["doctor", "--json"]);
    expect(doctor.code, doctor.stderr).toBe(0);
    const report = JSON.parse(doctor.stdout);
    expect(report.worker.packages.torch).toMatch(/^2\./);
    expect(report.worker.bitsandbytes).toHaveProperty("devices");
    expect(report.disk.free_bytes).toBeGreaterThan(0);
  }, 120_000);
});

describe("train --devices 2 (torchrun, gloo on the CPU)", () => {
  it("trains with two processes: rank 0 reports progress and the result, the adapter is saved once", () => {
    const output = path.join(W, "models", "two-processes");
    const run = cli(["train", "--base", TINY, "--output_dir", output, "--devices", "2", "--max-steps", "4", "--quantization", "none", ...QUICK, "--json"], QUICK_ENV);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const events = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(events.filter((event) => event.event === "progress").length).toBeGreaterThanOrEqual(4);
    expect(events.at(-1)).toMatchObject({ event: "result", status: "completed", metrics: { processes: 2, strategy: "ddp", steps: 4 } });
    expect(fs.existsSync(path.join(output, "adapter_model.safetensors"))).toBe(true);
    expect(events.some((event) => event.event === "log" && String(event.message).includes("2 processes (ddp, gloo)")), JSON.stringify(events.slice(0, 8))).toBe(true);
  }, 600_000);
});

describe("train --nodes 2 (two torchrun nodes on loopback)", () => {
  it("node 0 holds the run and reports it; node 1's process follows it and ends with it", async () => {
    const output = path.join(W, "models", "two-nodes");
    const port = String(29_400 + (process.pid % 500));
    const nodes = (rank: number) => ["--nodes", "2", "--node-rank", String(rank), "--master-addr", "127.0.0.1", "--master-port", port];
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, "--workdir", W, "--json", ...args], { env: { ...process.env, ...QUICK_ENV } });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk) => (stdout += chunk));
        child.stderr.on("data", (chunk) => (stderr += chunk));
        child.on("close", (code) => resolve({ code, stdout, stderr }));
      });
    const [zero, one] = await Promise.all([
      run(["train", "--base", TINY, "--output_dir", output, "--max-steps", "3", "--quantization", "none", ...QUICK, ...nodes(0)]),
      run(["train", ...nodes(1)]),
    ]);
    expect(zero.code, zero.stderr.slice(-2000)).toBe(0);
    expect(one.code, one.stderr.slice(-2000)).toBe(0);
    const result = JSON.parse(zero.stdout.trim().split("\n").at(-1)!);
    expect(result).toMatchObject({ event: "result", status: "completed", metrics: { processes: 2, steps: 3 } });
    expect(JSON.parse(one.stdout)).toMatchObject({ event: "result", status: "followed", node_rank: 1, processes: 1 });
    expect(fs.existsSync(path.join(W, "logs", "train-node-1.log"))).toBe(true);
  }, 600_000);
});

describe("train --dry-run", () => {
  it("prints the memory plan as JSON, with the estimated peak in bytes, without loading the model or training", () => {
    const run = cli(["--json", "train", "--base", TINY, "--dry-run", "--max-seq-length", "256", "--batch-size", "2"]);
    expect(run.code, run.stderr).toBe(0);
    const plan = JSON.parse(run.stdout) as { event: string; bytes: Record<string, number>; parameters: { lora: number }; fits: boolean | null };
    expect(plan.event).toBe("memory_plan");
    const parts = Object.entries(plan.bytes).filter(([name]) => name !== "total");
    expect(plan.bytes.total).toBe(parts.reduce((sum, [, bytes]) => sum + bytes, 0));
    expect(plan.bytes.total).toBeGreaterThan(0);
    expect(plan.parameters.lora).toBeGreaterThan(0);
    expect(plan.fits).toBe(true);
  });
});
