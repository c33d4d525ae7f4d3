import readline from "node:readline";
import { ExitCode, isAtsError, type ChatMessage, type RunContext } from "@ats-lora/core";
import { describeSpec, stopNote } from "../chat.js";
import { LocalModel, type Generation, type LocalModelSpec } from "../local-model.js";

export interface ChatSettings {
  maxTokens: number;
  temperature: number;
  seed?: number;
  /** Every answer constrained to this JSON Schema. */
  jsonSchema?: Record<string, unknown>;
}

export interface ChatTerminal {
  input: NodeJS.ReadableStream;
  /** Where answers stream. */
  output: NodeJS.WritableStream;
  /** The prompt, notes and tokens/s. */
  errors: NodeJS.WritableStream;
}

/**
 * `chat` in a terminal: a conversation kept turn by turn, answers streamed as they are generated. Ends at /exit or
 * Ctrl-D ("exit"), or at Ctrl-C outside an answer or a second one during it ("interrupted").
 */
export async function runChatSession(
  spec: LocalModelSpec,
  start: ChatMessage[],
  settings: ChatSettings,
  context: Pick<RunContext, "reporter">,
  terminal: ChatTerminal = { input: process.stdin, output: process.stdout, errors: process.stderr },
): Promise<"exit" | "interrupted"> {
  const note = (text: string): void => void terminal.errors.write(`${text}\n`);
  note(`loading ${describeSpec(spec)}`);
  const model = await LocalModel.load(spec);
  const lines = readline.createInterface({ input: terminal.input, output: terminal.errors, terminal: (terminal.input as { isTTY?: boolean }).isTTY === true });
  let closed = false;
  // Set from readline's SIGINT handler, outside the loop's control flow.
  const session: { ended: "exit" | "interrupted" } = { ended: "exit" };
  let answering: AbortController | undefined;
  lines.on("close", () => (closed = true));
  // The terminal is in raw mode, so Ctrl-C reaches readline, not the process.
  lines.on("SIGINT", () => {
    if (answering !== undefined && !answering.signal.aborted) return answering.abort();
    session.ended = "interrupted";
    answering?.abort();
    lines.close();
  });
  let history = [...start];
  note(`${spec.name} on ${model.device}. /reset clears the conversation, /exit or Ctrl-D leaves, Ctrl-C stops an answer.`);
  try {
    for (;;) {
      const line = await ask(lines, "> ", () => closed);
      if (line === null) break;
      const text = line.trim();
      if (text === "") continue;
      if (text === "/exit") break;
      if (text === "/reset") {
        history = [...start];
        note("(conversation cleared)");
        continue;
      }
      const turn: ChatMessage[] = [...history, { role: "user", content: line }];
      answering = new AbortController();
      try {
        let result: Generation | undefined;
        for await (const event of model.stream(turn, { ...settings, signal: answering.signal })) {
          if (event.type === "text") terminal.output.write(event.text);
          else result = event.result;
        }
        terminal.output.write("\n");
        history = [...turn, { role: "assistant", content: result!.text }];
        if (!context.reporter.quiet) note(`(${result!.tokens} tokens, ${result!.tokensPerSecond.toFixed(1)} tokens/s; ${stopNote(result!.stoppedBy)})`);
      } catch (error) {
        if (!isAtsError(error)) throw error;
        if (error.exitCode === ExitCode.interrupted) {
          terminal.output.write("\n");
          note("(answer stopped; that question is left out of the conversation)");
        } else {
          // A conversation that outgrew the context, say: the session goes on.
          note(`${error.message}${error.hint ? `\n  hint: ${error.hint}` : ""}`);
        }
        if (session.ended === "interrupted") break;
      } finally {
        answering = undefined;
      }
    }
  } finally {
    lines.close();
    await model.dispose();
  }
  return session.ended;
}

/** The next line, or null once the input has ended (Ctrl-D) or the session was closed. */
function ask(lines: readline.Interface, prompt: string, isClosed: () => boolean): Promise<string | null> {
  if (isClosed()) return Promise.resolve(null);
  return new Promise((resolve) => {
    const onClose = (): void => resolve(null);
    lines.once("close", onClose);
    lines.question(prompt, (answer) => {
      lines.off("close", onClose);
      resolve(answer);
    });
  });
}
