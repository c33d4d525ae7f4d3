import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: [".venv/**", "vendor/**", ".cache/**", "**/dist/**", "**/node_modules/**", "feedback_db/**", "vector_store/**", "models/**", "ats-lora-demo-*/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "error",
    },
  },
  // The reviewer page runs in the browser.
  { files: ["packages/serve/web/src/**/*.{ts,tsx}"], languageOptions: { globals: globals.browser } },
  // Benchmarks report on the console.
  { files: ["bench/**"], rules: { "no-console": "off" } },
);
