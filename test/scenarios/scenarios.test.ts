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
import type { RaftFaults } from "../../src/raft/mod.js";
import { collectFailures, runScenario, type RaftImplementation } from "./interpreter.js";

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

/**
 * The scripts must be able to fail: each planted fault of the core breaks the
 * rule one script is about, and that script must notice.
 */
describe("Raft scenario scripts against a core with a planted fault", () => {
  const cases: { fault: keyof RaftFaults; script: string; failure: RegExp }[] = [
    { fault: "commitAnyTerm", script: "figure-8-old-term-not-committed.txt", failure: /expect committed 1 1: node 1 has commit 2/ },
    { fault: "voteIgnoresLog", script: "vote-refused-outdated-log.txt", failure: /expect no-leader: leaders: 1/ },
    { fault: "readIndexWithoutQuorum", script: "read-index.txt", failure: /expect no-read-state 1 r3: node 1 served r3/ },
    { fault: "jointIncomingOnly", script: "joint-consensus-both-majorities.txt", failure: /expect state-machine 1: node 1 applied \[needs-both\]/ },
  ];
  for (const { fault, script, failure } of cases) {
    it(`${script} fails when the core runs with ${fault}`, () => {
      const faulty: RaftImplementation = { ...raft, createNode: (config) => new RawNode({ ...config, faults: { [fault]: true } }) };
      const failures = collectFailures(readFileSync(join(testdata, script), "utf8"), faulty);
      expect(failures.join("\n")).toMatch(failure);
    });
  }
});
