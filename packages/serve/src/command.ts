/** The serve room's command, as packages/cli mounts it (the package's `./command` entry). */
export { serveCommand } from "./commands/serve.js";
