import fs from "node:fs";
import path from "node:path";
import { isAtsError, readRegistry, registryFile, type OperationContext } from "@ats-lora/core";
import { resolveAdapter } from "./resolve.js";
import type { Routing } from "./router.js";
import type { ServedModels } from "./served-models.js";

/**
 * Keeps the router's default on the production adapter of models/registry.json: the adapter `models promote`
 * names is loaded (exported as a LoRA GGUF first if it has not been) and answers the router's id, and a rollback
 * switches back, without a restart. The registry is polled (a promotion replaces the file, which file watchers
 * report unevenly across platforms).
 */
export class ProductionFollower {
  /** The production adapter the router falls back to now, or null (the base). */
  model: string | null = null;
  /** Why the newest production adapter could not be served, or null. */
  error: string | null = null;
  private seen = "";
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly context: OperationContext,
    private readonly models: ServedModels,
    private readonly baseFile: string,
    private readonly routing: Routing,
  ) {}

  /** Reads the registry once and follows it; a failure is kept in `error` and the router stays as it was. */
  async sync(): Promise<void> {
    const file = registryFile(this.context.paths.models);
    const stamp = fs.existsSync(file) ? (({ mtimeMs, size }) => `${mtimeMs}:${size}`)(fs.statSync(file)) : "none";
    if (stamp === this.seen) return;
    this.seen = stamp;
    try {
      const name = readRegistry(this.context.paths.models).production;
      if (name === this.model) return;
      if (name !== null && this.models.get(name) === undefined) {
        const spec = await resolveAdapter(path.join(this.context.paths.models, name), this.baseFile, this.context, `the production adapter ${name}`);
        await this.models.add({ ...spec, name });
      }
      this.model = name;
      this.routing.production = name;
      this.error = null;
    } catch (error) {
      if (!isAtsError(error)) throw error;
      this.error = error.message;
    }
  }

  /** Follows the registry every `intervalMs` until close(). */
  follow(intervalMs = 1_000): void {
    this.timer = setInterval(() => {
      this.pending = this.pending.then(() => this.sync()).catch((error: unknown) => void (this.error = (error as Error).message));
    }, intervalMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.pending;
  }
}
