import fs from "node:fs";
import path from "node:path";
import { workerContractFiles, workerContractsDir } from "./worker-contracts.js";

// Writes the worker's generated contract files (run from the sources: pnpm --filter @ats-lora/worker worker-contracts).
const dir = workerContractsDir();
for (const [name, text] of Object.entries(workerContractFiles())) {
  fs.writeFileSync(path.join(dir, name), text);
  process.stderr.write(`wrote ${path.join(dir, name)}\n`);
}
