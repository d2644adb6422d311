/**
 * Runs every script in testdata/ against the real Raft core and compares the
 * rendered output with the golden text in the file. `REWRITE=1 npx vitest run
 * test/scenarios` writes the actual output back instead; a rewritten golden
 * file is an assertion, so read the diff before committing it.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it, expect } from "vitest";
import { MemoryStorage, RawNode, encodeConfChange, decodeConfChange } from "../../src/raft/mod.js";
import { runScenario, type RaftImplementation } from "./interpreter.js";

const testdata = join(dirname(fileURLToPath(import.meta.url)), "testdata");
const rewrite = process.env.REWRITE === "1";

const raft: RaftImplementation = {
  createStorage: (initial) => new MemoryStorage(initial),
  createNode: (config) => new RawNode(config),
  encodeConfChange,
  decodeConfChange,
};

const scripts = readdirSync(testdata).filter((name) => name.endsWith(".txt")).sort();

describe("Raft scenario scripts", () => {
  it("finds the scripts", () => {
    expect(scripts.length).toBeGreaterThanOrEqual(10);
  });

  for (const name of scripts) {
    it(`plays ${name} as its golden output says, with every expectation met`, () => {
      const path = join(testdata, name);
      const text = readFileSync(path, "utf8");
      const result = runScenario(text, raft);
      if (rewrite && result.rendered !== text) writeFileSync(path, result.rendered);
      expect(result.failures, `failed expectations in ${name}`).toEqual([]);
      if (!rewrite) expect(result.rendered, `output of ${name} differs from its golden text (REWRITE=1 to update, then review)`).toBe(text);
    });
  }
});
