import { Template } from "@huggingface/jinja";
import { InputError, type ChatMessage } from "@ats-lora/core";

/** A GGUF's `tokenizer.chat_template`, compiled once, with the model's BOS and EOS texts it may refer to. */
export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    private readonly specialTokens: { bos: string; eos: string },
    private readonly modelFile: string,
  ) {
    try {
      this.template = new Template(source);
    } catch (error) {
      throw new InputError(`the chat template in ${modelFile} does not parse: ${(error as Error).message}`, {
        cause: error,
        hint: "export the model again with its tokenizer's chat template",
      });
    }
  }

  /** The messages as the model was trained to read them, ending with the assistant's turn opened. */
  render(messages: readonly ChatMessage[]): string {
    try {
      return this.template.render({
        messages,
        add_generation_prompt: true,
        bos_token: this.specialTokens.bos,
        eos_token: this.specialTokens.eos,
      });
    } catch (error) {
      throw new InputError(`the chat template in ${this.modelFile} refused the conversation: ${(error as Error).message}`, {
        cause: error,
        hint: "check the roles and their order (system first, then user and assistant turns)",
      });
    }
  }
}
