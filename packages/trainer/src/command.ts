/** The trainer's commands, as packages/cli mounts them (the package's `./command` entry). */
export { trainCommand } from "./commands/train.js";
