/** The inference room's commands, as packages/cli mounts them (the package's `./command` entry). */
export { chatCommand, type ChatPorts } from "./commands/chat.js";
