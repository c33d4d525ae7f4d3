import fs from "node:fs";
import { createRequire } from "node:module";
import { Command, InvalidArgumentError } from "commander";
import { createRunContext, ExitCode, InputError, nonNegativeInt, renderEvents, type GlobalOptions } from "@ats-lora/core";

interface ServeFlags {
  host?: string;
  port?: number;
  model?: string;
  adapter: string[];
  tokenFile?: string;
  route: string[];
  ab?: string;
}

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

function port(value: string): number {
  const number = nonNegativeInt(value);
  if (number > 65535) throw new InvalidArgumentError("must be a port number, 0 to 65535 (0: any free port)");
  return number;
}

/** `ats-lora serve`: the HTTP service an ATS backend calls, until SIGTERM or Ctrl-C. */
export function serveCommand(): Command {
  return new Command("serve")
    .description("serve the base model and its LoRA adapters over HTTP: OpenAI-compatible completions, every answer recorded for review, reviewers' feedback")
    .option("--host <address>", "the address to listen on (default serve.host: 127.0.0.1; any other needs --token-file)")
    .option("--port <n>", "the port (default serve.port: 8080; 0 picks a free one)", port)
    .option("--model <model>", "the base: a name in models/, a folder or a .gguf (default serve.model, else the one pulled base)")
    .option("--adapter <name=path>", "a LoRA adapter served as model NAME (repeat for more): an adapter folder with a GGUF export, or the .gguf", (value: string, previous: string[]) => [...previous, value], [])
    .option("--route <task=model>", "answer requests for the router's model id (serve.router_model: ats) of TASK with MODEL (repeat for more; serve.task_models)", (value: string, previous: string[]) => [...previous, value], [])
    .option("--ab <model=weight,...>", "split the router's callers between versions by weight, each caller always on one (serve.ab), e.g. resume-v1=50,resume-v2=50")
    .option("--token-file <file>", "require Authorization: Bearer <the file's first line> on every request but /health")
    .addHelpText(
      "after",
      `
Routes: GET /v1/models, POST /v1/chat/completions and /v1/completions (OpenAI's format, "stream": true for
server-sent events, "model" picks the base or an adapter), POST /api/feedback, POST /api/interactions,
GET /api/interactions?status=unreviewed&task=…, GET /api/stats, GET /health, GET /openapi.json; fine-tuning
jobs: POST /api/jobs (or /fine-tuning/setup), GET /api/jobs/ID (or /fine-tuning/status), DELETE /api/jobs/ID,
POST /fine-tuning/query, and POST /api/adapters to serve a new adapter without a restart.
The reviewer web page is at / (the review queue and the loop's overview; with --token-file it asks for the token).
The model id "ats" (serve.router_model) routes: --ab's split (sticky per caller: the body's "user", the
X-ATS-Caller header, else the address), else --route's model for the task, else the production adapter
(models promote; followed while serving), else the base; X-ATS-Model names the
model that answered, and the interaction records it (collect stats --by-model compares their ratings).
Each answer is stored as an interaction (its id in the response's interaction_id and the X-ATS-Interaction-Id
header) unless the request says "store": false; the task comes from the body's "task", the X-ATS-Task header,
or the prompt's instruction. SIGTERM or Ctrl-C stops taking requests and lets those in flight finish.

Examples:
  $ ats-lora models pull smollm2-135m-instruct && ats-lora serve
  $ ats-lora serve --model smollm2-135m-instruct --adapter resume-v2=models/resume-v2 --port 8080
  $ ats-lora serve --adapter v1=models/ats_lora_v1 --adapter v2=models/ats_lora_v2 --ab v1=50,v2=50
  $ curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \\
      -d '{"model": "resume-v2", "messages": [{"role": "user", "content": "Parse this resume: …"}]}'`,
    )
    .action(async (flags: ServeFlags, cmd: Command) => {
      const context = createRunContext(cmd.optsWithGlobals<GlobalOptions>());
      const token = flags.tokenFile === undefined ? null : readToken(flags.tokenFile);
      const [{ resolveServedModels }, { startServer }, { parseAbSplit }, { disposeLlama }] = await Promise.all([
        import("../resolve.js"),
        import("../serve.js"),
        import("../router.js"),
        import("@ats-lora/inference"),
      ]);
      const routing = {
        taskModels: flags.route.length === 0 ? undefined : { ...context.config.serve.task_models, ...Object.fromEntries(flags.route.map(taskRoute)) },
        ab: flags.ab === undefined ? undefined : parseAbSplit(flags.ab),
      };
      const { base, adapters } = await resolveServedModels({ model: flags.model, adapters: flags.adapter }, context);
      const events = renderEvents(context);
      const server = await startServer(
        { host: flags.host ?? context.config.serve.host, port: flags.port ?? context.config.serve.port, base, adapters, routing, token, version },
        context,
        { onEvent: events.onEvent },
      ).finally(() => events.done());
      context.reporter.result({ url: server.url, models: server.models, openapi: `${server.url}/openapi.json` }, () =>
        [`serving ${server.models.map((model) => model.id).join(", ")} at ${server.url}`, `OpenAPI: ${server.url}/openapi.json; SIGTERM or Ctrl-C stops`].join("\n"),
      );
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once("SIGTERM", () => resolve("SIGTERM"));
        process.once("SIGINT", () => resolve("SIGINT"));
      });
      context.reporter.info(`${signal}: finishing the requests in flight`);
      await server.close();
      await disposeLlama();
      process.exitCode = signal === "SIGINT" ? ExitCode.interrupted : ExitCode.ok;
    });
}

function taskRoute(argument: string): [string, string] {
  const equals = argument.indexOf("=");
  if (equals <= 0 || equals === argument.length - 1) throw new InputError(`--route ${argument}: give it as TASK=MODEL`, { hint: "--route resume_parse=resume-v2" });
  return [argument.slice(0, equals).trim(), argument.slice(equals + 1).trim()];
}

function readToken(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new InputError(`cannot read the token file ${file}: ${(error as Error).message}`, { hint: "write the token on its first line: openssl rand -hex 32 > token.txt" });
  }
  const token = text.split("\n")[0]!.trim();
  if (token === "") throw new InputError(`the token file ${file} is empty`, { hint: "write the token on its first line: openssl rand -hex 32 > token.txt" });
  return token;
}
