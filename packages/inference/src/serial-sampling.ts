import type { LlamaContext } from "node-llama-cpp";
import { RunError } from "@ats-lora/core";

/**
 * node-llama-cpp 3.21.1 samples each sequence of a decoded batch on its own libuv thread, while llama.cpp reorders
 * a batch's outputs lazily and unguarded on the first logits read (llama_get_logits_ith → output_reorder): two
 * sequences sampling at once can take each other's logits. Measured here with 4 sequences: 2 to 11 of 16-24 batched
 * greedy answers differed from one-at-a-time ones, with tokens of one conversation in another; none with this.
 * Decoding stays batched; only the (cheap) sampling calls of one context wait for each other.
 */
export function sampleOneAtATime(context: LlamaContext): void {
  const native = (context as unknown as { _ctx?: { sampleToken?: unknown } })._ctx;
  if (native === undefined || typeof native.sampleToken !== "function") {
    throw new RunError("node-llama-cpp's context no longer has the sampleToken this package serializes", {
      hint: "check whether the new node-llama-cpp still samples a batch's sequences concurrently, then update or drop sampleOneAtATime",
    });
  }
  const sample = (native.sampleToken as (...args: unknown[]) => Promise<unknown>).bind(native);
  let previous: Promise<unknown> = Promise.resolve();
  // The binding's method is read-only on its prototype: an own property shadows it for this context only.
  Object.defineProperty(native, "sampleToken", {
    value: (...args: unknown[]): Promise<unknown> => {
      const next = previous.then(() => sample(...args));
      previous = next.catch(() => undefined);
      return next;
    },
  });
}
