import { interruptedError, throwIfAborted, type OperationEvent, type OperationOptions } from "@ats-lora/core";
import { WorkerClient } from "@ats-lora/worker";

/** The worker's progress stages as a person reads them, and what their steps count. */
const STAGES: Record<string, { label: string; unit: "count" | "bytes" }> = {
  download: { label: "fetching", unit: "bytes" },
  prepare: { label: "preparing the base model", unit: "count" },
  export: { label: "exporting", unit: "count" },
};

/** How long a job has to stop after a cancel request before its worker is killed (a hub download cannot stop). */
const CANCEL_GRACE_MS = 5_000;

/**
 * Runs `work` on a worker started for it (its log appended to `logFile`): the worker's progress notifications
 * become progress events and its log notifications info events. Aborting asks the worker to cancel the job (it
 * removes what it half-wrote), kills it if it has not stopped within a few seconds, and rejects with
 * `interrupted`.
 */
export async function withWorker<T>(
  what: string,
  logFile: string,
  options: OperationOptions<OperationEvent>,
  work: (client: WorkerClient) => Promise<T>,
): Promise<T> {
  const { signal, onEvent } = options;
  throwIfAborted(signal, what);
  const { client } = await WorkerClient.start({ logFile });
  const unsubscribe = client.onNotification((notification) => {
    if (notification.method === "progress") {
      const { stage, step, total } = notification.params;
      if (total <= 0) return;
      const known = STAGES[stage] ?? { label: stage, unit: "count" as const };
      onEvent?.({ type: "progress", stage: known.label, done: Math.min(step, total), total, unit: known.unit });
    } else if (notification.method === "log") {
      onEvent?.({ type: "info", message: notification.params.message });
    }
  });
  let killTimer: NodeJS.Timeout | undefined;
  const onAbort = (): void => {
    void client.request("cancel", {}).catch(() => undefined);
    killTimer = setTimeout(() => client.kill(), CANCEL_GRACE_MS);
  };
  try {
    throwIfAborted(signal, what);
    const running = work(client);
    // After the request: the worker forgets a cancel that comes before its job.
    signal?.addEventListener("abort", onAbort, { once: true });
    return await running;
  } catch (error) {
    throw signal?.aborted ? interruptedError(what) : error;
  } finally {
    clearTimeout(killTimer);
    signal?.removeEventListener("abort", onAbort);
    unsubscribe();
    await client.close();
  }
}
