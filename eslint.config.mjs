// @ts-check
import js from "@eslint/js";
import nextPlugin from "@next/eslint-plugin-next";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

/**
 * One lint configuration for the whole tree: typescript-eslint's recommended rules everywhere,
 * plus its type-aware promise rules (a forgotten `await` or an async callback where nothing
 * waits for it is the bug this codebase can least afford), React's hooks rules and Next's rules
 * (Core Web Vitals) where React code lives. Formatting is Prettier's job (.prettierrc.json), so
 * no stylistic rules here.
 */
export default tseslint.config(
  {
    ignores: [
      "node_modules/",
      "packages/*/dist/",
      ".next/",
      ".data/",
      "src/generated/",
      "test-results/",
      "coverage/",
      "next-env.d.ts",
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      // `_name` marks a parameter or binding kept for its position or for documentation.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Configuration files outside the TypeScript project: no type information.
    files: ["**/*.{js,mjs,cjs}"],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // Tests read frames and JSON of any shape off the wire.
    files: ["**/*.test.ts", "src/test/**", "e2e/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
  {
    files: [
      "src/app/**/*.{ts,tsx}",
      "src/components/**/*.{ts,tsx}",
      "src/lib/**/*.{ts,tsx}",
      "packages/*/src/react/**/*.{ts,tsx}",
    ],
    plugins: { "react-hooks": reactHooks, "@next/next": nextPlugin },
    rules: {
      ...reactHooks.configs.flat["recommended-latest"].rules,
      ...nextPlugin.configs["core-web-vitals"].rules,
    },
  },
);
