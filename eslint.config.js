// ESLint (flat config) for the browser scripts the package and the demo ship.
// Run by .ci/run after `npm ci`; plain ES modules in the browser, no build step.
const js = require("@eslint/js");
const globals = require("globals");

module.exports = [
  {
    files: [
      "flask_toucan/static/*.js",
      "flask_toucan/sandbox/static/*.js",
      "demo/static/*.js",
    ],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      ...js.configs.recommended.rules,
      eqeqeq: ["error", "always"],
      "no-implicit-globals": "error",
      // `catch (err) {}` where the error is deliberately ignored is fine.
      "no-unused-vars": ["error", { caughtErrors: "none", argsIgnorePattern: "^_" }],
      "no-var": "error",
      "prefer-const": "error",
    },
  },
  { ignores: ["node_modules/", ".venv/", "build/", "dist/"] },
];
