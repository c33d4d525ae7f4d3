import path from "node:path";
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The reviewer page, compiled at `pnpm build` into static files that `ats-lora serve` ships (dist/web): no CDN,
// nothing fetched from elsewhere at run time.
const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  base: "/",
  plugins: [react()],
  build: {
    outDir: path.join(here, "..", "dist", "web"),
    emptyOutDir: true,
    // The server's content security policy allows no inline script.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: false,
  },
  logLevel: "warn",
});
