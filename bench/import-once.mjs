// One import in a fresh process, so its peak RSS is the import's own. Used by collect-import.mjs.
import { FeedbackStore, importJsonlFile } from "../packages/feedback/dist/index.js";

const [file, db] = process.argv.slice(2);
const store = FeedbackStore.open(db);
const start = performance.now();
const report = importJsonlFile(store, file);
const seconds = (performance.now() - start) / 1000;
store.close();
if (report.interactions.inserted === 0) throw new Error("nothing imported");
process.stdout.write(JSON.stringify({ seconds, maxRssKb: process.resourceUsage().maxRSS }));
