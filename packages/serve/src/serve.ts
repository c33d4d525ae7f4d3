import net from "node:net";
import { InputError, RunError, throwIfAborted, type OperationContext, type OperationOptions } from "@ats-lora/core";
import type { LocalModelSpec } from "@ats-lora/inference";
import type { FastifyInstance } from "fastify";
import { buildServeApp } from "./app.js";
import { FineTuningJobs } from "./jobs.js";
import { ProductionFollower } from "./production.js";
import { resolveAdapter } from "./resolve.js";
import { unservedModels, type Routing } from "./router.js";
import { ServedModels } from "./served-models.js";

export interface ServeInput {
  host: string;
  /** 0: a free port, which the result names. */
  port: number;
  base: LocalModelSpec;
  /** Each served under its own name, on the base. */
  adapters: LocalModelSpec[];
  /** Overrides of serve.task_models and serve.ab (the --route and --ab flags). */
  routing?: { taskModels?: Record<string, string>; ab?: Array<{ model: string; weight: number }> };
  /** The bearer token every request needs; null: none, which only a loopback address allows. */
  token: string | null;
  version: string;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  models: Array<{ id: string; base: string; adapters: string[] }>;
  app: FastifyInstance;
  jobs: FineTuningJobs;
  /** The production adapter the router's id answers with, followed from models/registry.json. */
  production: ProductionFollower;
  /** Stops taking requests, lets those in flight finish, then frees the models. */
  close(): Promise<void>;
}

/** Whether an address is this machine's own (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  const version = net.isIP(host);
  if (version === 4) return host.startsWith("127.");
  if (version === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}

/** `serve`: loads the base and its adapters, and answers HTTP on host:port until closed. */
export async function startServer(input: ServeInput, context: OperationContext, options: OperationOptions = {}): Promise<RunningServer> {
  if (input.token === null && !isLoopback(input.host)) {
    throw new InputError(`--host ${input.host} is reachable from other machines, and nothing would guard it`, {
      hint: "give a bearer token with --token-file FILE (or keep the default host, 127.0.0.1)",
    });
  }
  if (input.token !== null && input.token.trim().length < 16) {
    throw new InputError("the bearer token is shorter than 16 characters", { hint: "write a long random one: openssl rand -hex 32 > token.txt" });
  }
  const { serve } = context.config;
  const routing: Routing = {
    model: serve.router_model,
    taskModels: input.routing?.taskModels ?? serve.task_models,
    ab: input.routing?.ab ?? Object.entries(serve.ab).map(([model, weight]) => ({ model, weight })),
  };
  const names = new Set([input.base.name, ...input.adapters.map((adapter) => adapter.name)]);
  if (names.has(routing.model)) throw new InputError(`a served model is called ${routing.model}, the router's id (serve.router_model)`, { hint: "rename the adapter, or set serve.router_model to another id" });
  const unserved = unservedModels(routing, names);
  if (unserved.length > 0) {
    throw new InputError(`the routing names models this server does not serve: ${[...new Set(unserved)].join(", ")}`, {
      hint: `serve them (--adapter NAME=PATH), or route to ${[...names].join(", ")}`,
    });
  }
  options.onEvent?.({ type: "stage", message: `loading ${[input.base.name, ...input.adapters.map((adapter) => adapter.name)].join(", ")}` });
  const models = await ServedModels.load(input.base, input.adapters, { sequences: serve.sequences, contextSize: serve.context_size, signal: options.signal });
  const jobs = new FineTuningJobs(context, models, input.base);
  const production = new ProductionFollower(context, models, input.base.base, routing);
  let app: FastifyInstance | undefined;
  try {
    // The production adapter (models promote) answers the router's id from the start, and after each promotion.
    await production.sync();
    if (production.error !== null) options.onEvent?.({ type: "warning", message: `serving the base for ${routing.model}: ${production.error}` });
    else if (production.model !== null) options.onEvent?.({ type: "info", message: `${routing.model} answers with the production adapter ${production.model}` });
    throwIfAborted(options.signal, "serve");
    app = await buildServeApp({
      models,
      routing,
      jobs,
      production,
      context,
      resolveAdapter: (where) => resolveAdapter(where, input.base.base, context, "the adapter"),
      token: input.token,
      defaultMaxTokens: serve.max_tokens,
      storeInteractions: serve.store_interactions,
      bodyLimit: serve.body_limit_bytes,
      version: input.version,
    });
    await app.listen({ host: input.host, port: input.port });
    production.follow();
  } catch (error) {
    await production.close();
    await app?.close();
    await models.dispose();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new RunError(`port ${input.port} on ${input.host} is in use`, { hint: "stop what listens there, or pick another --port" });
    if (code === "EADDRNOTAVAIL") throw new InputError(`${input.host} is not an address of this machine`, { hint: "use 127.0.0.1, or an address `ip addr` lists" });
    throw error;
  }
  const address = app.server.address() as net.AddressInfo;
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const running = app;
  return {
    url: `http://${shown}:${address.port}`,
    host: address.address,
    port: address.port,
    models: models.list().map((served) => ({ id: served.id, base: served.spec.base, adapters: served.spec.adapters.map((adapter) => adapter.path) })),
    app: running,
    jobs,
    production,
    close: async () => {
      // Requests in flight finish; a running job stops at its next step with a checkpoint.
      await Promise.all([running.close(), jobs.close(), production.close()]);
      await models.dispose();
    },
  };
}
