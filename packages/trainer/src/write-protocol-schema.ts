import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { protocolJsonSchema } from "./protocol.js";

// Writes src/protocol.schema.json (run from dist/ after a build; the file lives beside the sources).
const target = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "src", "protocol.schema.json");
fs.writeFileSync(target, `${JSON.stringify(protocolJsonSchema(), null, 2)}\n`);
process.stderr.write(`wrote ${target}\n`);
