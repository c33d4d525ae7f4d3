import type { LlamaContextSequence } from "node-llama-cpp";
import { interruptedError } from "@ats-lora/core";

/** A context's sequences lent out one conversation at a time; the rest wait in order. */
export class SequencePool {
  private readonly idle: LlamaContextSequence[];
  private readonly waiting: Array<(sequence: LlamaContextSequence) => void> = [];

  constructor(sequences: LlamaContextSequence[]) {
    this.idle = [...sequences];
  }

  acquire(signal: AbortSignal | undefined, what: string): Promise<LlamaContextSequence> {
    if (signal?.aborted) return Promise.reject(interruptedError(what));
    const sequence = this.idle.shift();
    if (sequence !== undefined) return Promise.resolve(sequence);
    return new Promise((resolve, reject) => {
      const grant = (lent: LlamaContextSequence): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve(lent);
      };
      const onAbort = (): void => {
        const at = this.waiting.indexOf(grant);
        if (at !== -1) this.waiting.splice(at, 1);
        reject(interruptedError(what));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  release(sequence: LlamaContextSequence): void {
    const next = this.waiting.shift();
    if (next === undefined) this.idle.push(sequence);
    else next(sequence);
  }
}
