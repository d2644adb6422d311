// Lint rules that keep the architecture honest (see ../shared/STYLE.md, habit 1):
// src/raft, src/kv and src/queue are pure and deterministic, so they may not
// import Node's I/O modules, read a clock, use ambient randomness or await.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const nodeModules = [
  "fs", "fs/promises", "net", "dgram", "tls", "http", "http2", "https", "child_process",
  "timers", "timers/promises", "worker_threads", "os", "cluster", "crypto", "process",
  "perf_hooks", "readline", "stream", "dns", "vm",
];
const restrictedImportPaths = nodeModules.flatMap((name) => [
  { name, message: "pure layers do no I/O: inject an interface instead" },
  { name: `node:${name}`, message: "pure layers do no I/O: inject an interface instead" },
]);

const pureRules = {
  "no-restricted-imports": ["error", {
    paths: restrictedImportPaths,
    patterns: [
      { group: ["../storage/*", "../transport/*", "../server/*", "../api/*", "../cli/*", "../client/*", "../sim/*"],
        message: "pure layers may not import layers with I/O" },
    ],
  }],
  "no-restricted-globals": ["error",
    { name: "setTimeout", message: "no timers in pure layers: the runtime calls tick()" },
    { name: "setInterval", message: "no timers in pure layers: the runtime calls tick()" },
    { name: "setImmediate", message: "no timers in pure layers" },
    { name: "queueMicrotask", message: "no scheduling in pure layers" },
    { name: "process", message: "no process access in pure layers" },
    { name: "performance", message: "no clock in pure layers" },
    { name: "crypto", message: "no ambient randomness in pure layers: inject a seeded Prng" },
    { name: "fetch", message: "no I/O in pure layers" },
    { name: "require", message: "no dynamic loading in pure layers" },
  ],
  "no-restricted-syntax": ["error",
    { selector: "AwaitExpression", message: "pure layers are synchronous" },
    { selector: "FunctionDeclaration[async=true], FunctionExpression[async=true], ArrowFunctionExpression[async=true]", message: "pure layers are synchronous" },
    { selector: "NewExpression[callee.name='Date']", message: "no clock in pure layers" },
    { selector: "MemberExpression[object.name='Date'][property.name='now']", message: "no clock in pure layers" },
    { selector: "MemberExpression[object.name='Math'][property.name='random']", message: "no ambient randomness: inject a seeded Prng" },
    { selector: "ImportExpression", message: "no dynamic imports in pure layers" },
  ],
};

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  {
    files: ["src/raft/**/*.ts", "src/kv/**/*.ts", "src/queue/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: pureRules,
  },
  {
    files: ["src/lib/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": ["error", { patterns: [{ group: ["../*"], message: "lib/ imports nothing else in src/" }] }],
    },
  },
);
