/** The models package's commands, as packages/cli mounts them (the package's `./command` entry). */
export { pullCommand } from "./commands/pull.js";
export { listCommand } from "./commands/list.js";
export { exportCommand } from "./commands/export.js";
export { promoteCommand, rollbackCommand, showCommand } from "./commands/versions.js";
