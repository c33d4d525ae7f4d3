import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { AtsError, InputError, installRoot, RunError } from "@ats-lora/core";
import {
  METHODS,
  NOTIFICATIONS,
  ERROR_CODES,
  PROTOCOL_VERSION,
  RpcNotification,
  RpcResponse,
  type Method,
  type Notification,
  type ParamsOf,
  type ResultOf,
} from "./protocol.js";

export interface WorkerOptions {
  /** The Python interpreter; default $ATS_LORA_PYTHON, else the project's .venv. */
  python?: string;
  /** Append the worker's stderr (its log) to this file. */
  logFile?: string;
  /** Called with each stderr line. */
  onLog?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Start the worker under torchrun, one process per device (rank 0 speaks the protocol); default: one process. */
  launch?: Launch;
}

/** Where this machine's processes sit in a torchrun run: `train --devices N [--nodes M --node-rank R …]`. */
export interface Launch {
  /** Processes on this machine, one per device. */
  processes: number;
  nodes: number;
  /** This machine's place among the nodes: 0 runs rank 0, which speaks the protocol. */
  nodeRank: number;
  /** Node 0's address and a free port on it (needed with several nodes). */
  masterAddr?: string;
  masterPort?: number;
}

/** Whether the worker runs under torchrun (several processes here, or several machines). */
export function isLaunched(launch: Launch | undefined): launch is Launch {
  return launch !== undefined && (launch.processes > 1 || launch.nodes > 1);
}

/** The worker's command line: the module itself, or under torchrun (PyTorch's launcher, from the worker's torch). */
export function workerCommand(launch: Launch | undefined): string[] {
  if (!isLaunched(launch)) return ["-m", "ats_lora_worker"];
  const where =
    launch.nodes === 1
      ? ["--standalone"]
      : [`--nnodes=${launch.nodes}`, `--node-rank=${launch.nodeRank}`, `--master-addr=${launch.masterAddr ?? "127.0.0.1"}`, `--master-port=${launch.masterPort ?? 29500}`];
  return ["-m", "torch.distributed.run", ...where, `--nproc-per-node=${launch.processes}`, "-m", "ats_lora_worker"];
}

/** Spawns the worker (or torchrun over it) with the worker's environment. */
export function spawnWorker(options: WorkerOptions): ChildProcessWithoutNullStreams {
  const python = workerPython(options.python);
  return spawn(python, workerCommand(options.launch), {
    cwd: workerDir(),
    env: {
      ...process.env,
      ...options.env,
      PYTHONPATH: [workerDir(), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
      PYTHONUNBUFFERED: "1",
      TOKENIZERS_PARALLELISM: "false",
    },
    stdio: ["pipe", "pipe", "pipe"],
    // torchrun ends its processes on SIGINT: in its own process group, Ctrl-C reaches only this process, which
    // turns it into a cancel that saves a checkpoint.
    detached: isLaunched(options.launch),
  });
}

/** Where the worker's Python package lives (packages/worker/python). */
export function workerDir(): string {
  return path.join(installRoot(), "packages", "worker", "python");
}

export function workerPython(explicit?: string): string {
  const python = explicit ?? process.env.ATS_LORA_PYTHON ?? path.join(installRoot(), ".venv", "bin", "python");
  if (path.isAbsolute(python) && !fs.existsSync(python)) {
    throw new RunError(`the worker's Python environment is missing: ${python} does not exist`, {
      hint: "run bash scripts/setup.sh (it creates .venv), or point ATS_LORA_PYTHON at a Python with the worker's requirements",
    });
  }
  return python;
}

/** A failure reported by the worker, or the worker dying: keeps the last lines of its log. */
export class WorkerExitedError extends RunError {}

const STDERR_TAIL = 40;

/**
 * Spawns the Python worker and speaks JSON-RPC 2.0 with it over stdin/stdout, one message per line. stderr is
 * the worker's free-form log. Requests resolve with validated results; notifications go to listeners; a worker
 * that exits (even by kill -9) fails every pending request with the last lines of its log.
 */
export class WorkerClient {
  private nextId = 1;
  private readonly pending = new Map<number, { method: Method; resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly listeners = new Set<(notification: Notification) => void>();
  private readonly tail: string[] = [];
  private exitError: Error | undefined;
  /** Under torchrun: a kill goes to torchrun as SIGTERM first, so that it ends its processes (SIGKILL would orphan them). */
  private launched = false;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, options: WorkerOptions) {
    if (options.logFile !== undefined) fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
    const log = options.logFile === undefined ? undefined : fs.createWriteStream(options.logFile, { flags: "a" });
    readline.createInterface({ input: child.stderr }).on("line", (line) => {
      this.tail.push(line);
      if (this.tail.length > STDERR_TAIL) this.tail.shift();
      log?.write(`${line}\n`);
      options.onLog?.(line);
    });
    readline.createInterface({ input: child.stdout }).on("line", (line) => this.receive(line));
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        this.exitError = new WorkerExitedError(`the worker ${how}`, {
          details: this.tail.slice(-15).map((line) => `worker: ${line}`),
          hint: "the lines above are the end of its log; a run with checkpoints continues with --resume",
        });
        for (const request of this.pending.values()) request.reject(this.exitError);
        this.pending.clear();
        log?.end();
        resolve({ code, signal });
      });
    });
  }

  /** Starts a worker and checks it speaks this protocol version. */
  static async start(options: WorkerOptions = {}): Promise<{ client: WorkerClient; info: ResultOf<"initialize"> }> {
    if (isLaunched(options.launch) && options.launch.nodeRank !== 0) {
      throw new InputError("only node 0 runs the worker's rank 0, which speaks the protocol; other nodes follow it (followWorker)");
    }
    const python = workerPython(options.python);
    const child = spawnWorker(options);
    const started = new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", (error) =>
        reject(
          new RunError(`cannot start the worker with ${python}: ${error.message}`, {
            hint: "run bash scripts/setup.sh, or set ATS_LORA_PYTHON to a Python with the worker's requirements",
          }),
        ),
      );
    });
    await started;
    const client = new WorkerClient(child, options);
    client.launched = isLaunched(options.launch);
    const info = await client.request("initialize", { protocol_version: PROTOCOL_VERSION });
    return { client, info };
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The last lines the worker wrote to its log. */
  get logTail(): readonly string[] {
    return this.tail;
  }

  onNotification(listener: (notification: Notification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  request<M extends Method>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    if (this.exitError) return Promise.reject(this.exitError);
    const id = this.nextId++;
    const message = JSON.stringify({ jsonrpc: "2.0", id, method, params: METHODS[method].params.parse(params) });
    return new Promise<ResultOf<M>>((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (value: unknown) => void, reject });
      this.child.stdin.write(`${message}\n`);
    });
  }

  /** Asks the worker to stop and waits for it; kills it if it does not leave within `graceMs`. */
  async close(graceMs = 10_000): Promise<void> {
    if (this.exitError) return;
    const timer = setTimeout(() => this.kill(), graceMs);
    try {
      await this.request("shutdown", {}).catch(() => undefined);
      this.child.stdin.end();
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (!this.launched || signal !== "SIGKILL") {
      this.child.kill(signal);
      return;
    }
    this.child.kill("SIGTERM");
    setTimeout(() => this.child.kill("SIGKILL"), 10_000).unref();
  }

  private receive(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return this.protocolViolation(`a line that is not JSON: ${line.slice(0, 200)}`);
    }
    const notification = RpcNotification.safeParse(message);
    if (notification.success) {
      const method = notification.data.method as keyof typeof NOTIFICATIONS;
      const schema = NOTIFICATIONS[method];
      if (!schema) return this.protocolViolation(`an unknown notification ${notification.data.method}`);
      const params = schema.safeParse(notification.data.params);
      if (!params.success) return this.protocolViolation(`invalid ${method} params: ${params.error.issues[0]?.message}`);
      for (const listener of this.listeners) listener({ method, params: params.data } as Notification);
      return;
    }
    const response = RpcResponse.safeParse(message);
    if (!response.success) return this.protocolViolation(`a message that is neither a response nor a notification: ${line.slice(0, 200)}`);
    const id = response.data.id;
    const request = typeof id === "number" ? this.pending.get(id) : undefined;
    if (!request) return this.protocolViolation(`a response to no pending request (id ${String(id)})`);
    this.pending.delete(id as number);
    if ("error" in response.data) {
      request.reject(toError(request.method, response.data.error));
      return;
    }
    const result = METHODS[request.method].result.safeParse(response.data.result);
    if (!result.success) {
      request.reject(new RunError(`the worker's ${request.method} result does not match the protocol: ${result.error.issues[0]?.message}`));
      return;
    }
    request.resolve(result.data);
  }

  private protocolViolation(what: string): void {
    const error = new RunError(`protocol error: the worker sent ${what}`);
    for (const request of this.pending.values()) request.reject(error);
    this.pending.clear();
    this.child.kill("SIGKILL");
  }
}

function toError(method: string, error: { code: number; message: string; data?: Record<string, unknown> }): AtsError {
  const hint = typeof error.data?.hint === "string" ? error.data.hint : undefined;
  // Invalid params or bad input (a missing model, unusable data): the user's to fix, exit 2.
  if (error.code === ERROR_CODES.INVALID_PARAMS) return new InputError(error.message, { hint });
  return new RunError(`${method} failed: ${error.message}`, { hint });
}

/**
 * A node other than node 0 in a multi-node run: torchrun's processes here follow rank 0 (on node 0), which sends
 * them the run; nothing here speaks the protocol. Resolves when they end, with torchrun's exit code.
 */
export async function followWorker(options: WorkerOptions & { launch: Launch }): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child = spawnWorker(options);
  if (options.logFile !== undefined) fs.mkdirSync(path.dirname(options.logFile), { recursive: true });
  const log = options.logFile === undefined ? undefined : fs.createWriteStream(options.logFile, { flags: "a" });
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on("line", (line) => {
      log?.write(`${line}\n`);
      options.onLog?.(line);
    });
  }
  child.stdin.end();
  return new Promise((resolve, reject) => {
    child.once("error", (error) => reject(new RunError(`cannot start torchrun with ${workerPython(options.python)}: ${error.message}`)));
    child.once("exit", (code, signal) => {
      log?.end();
      resolve({ code, signal });
    });
  });
}
