/**
 * Process-level crash tests: a child process appends to a WAL on the power-cut
 * layer (unsynced writes live only in its memory) and prints every
 * acknowledgement; the test kills it with SIGKILL at seeded moments, reopens
 * the WAL and checks that every acknowledged append is there, whole, and that
 * nothing unacknowledged is half there. A planted fault (acknowledge before
 * fdatasync) must make the same check fail.
 *
 * The child is plain JavaScript run by node, so the test first transpiles the
 * modules it needs (lib, raft types, storage) into a scratch directory; a
 * type-free transpile is fast and does not depend on the rest of the tree
 * compiling.
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterId, groupId, nodeId } from "../../src/lib/ids.js";
import { createPrng } from "../../src/lib/prng.js";
import { NodeFileSystem } from "../../src/storage/fs/node-file-system.js";
import { Wal } from "../../src/storage/wal/wal.js";

const here = dirname(fileURLToPath(import.meta.url));
const repository = join(here, "..", "..");
const CHILD = join(here, "wal-crash-child.mjs");
const SOURCE_DIRECTORIES = ["src/lib", "src/raft", "src/storage/fs", "src/storage/wal"];
const GROUPS = 4;
const HONEST_ROUNDS = 6;
const FAULTY_ROUNDS_MAX = 8;
/** A child that never reaches its kill point is itself a failure. */
const CHILD_RUN_MS_MAX = 15_000;

let scratch: string;
let moduleRoot: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "cairn-wal-crash-"));
  moduleRoot = join(scratch, "modules");
  for (const directory of SOURCE_DIRECTORIES) {
    for (const name of readdirSync(join(repository, directory))) {
      if (!name.endsWith(".ts") || name.endsWith(".test.ts")) continue;
      const source = readFileSync(join(repository, directory, name), "utf8");
      const output = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
        fileName: name,
      });
      const target = join(moduleRoot, directory, name.replace(/\.ts$/, ".js"));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, output.outputText);
    }
  }
  writeFileSync(join(moduleRoot, "package.json"), JSON.stringify({ type: "module" }));
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** What the test has seen acknowledged: per group, for each index, the round that wrote it and its append's last index. */
type Acknowledged = Array<Map<number, { round: number; last: number }>>;

interface ChildRun {
  acknowledgements: number;
  stderr: string;
}

/** Runs the child until it has printed `killAfter` acknowledgements, then SIGKILLs it. */
function runChild(directory: string, round: number, seed: number, fault: string, killAfter: number, acknowledged: Acknowledged): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, moduleRoot, directory, String(round), String(seed), fault], { stdio: ["ignore", "pipe", "pipe"] });
    let acknowledgements = 0;
    let stderr = "";
    let buffered = "";
    let killed = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`child did not reach ${killAfter} acknowledgements in ${CHILD_RUN_MS_MAX} ms; stderr: ${stderr}`));
    }, CHILD_RUN_MS_MAX);
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) {
        const match = /^ack (\d+) (\d+) (\d+)$/.exec(line);
        if (!match || killed) continue;
        const [group, first, last] = match.slice(1).map(Number);
        const log = acknowledged[group];
        for (const index of [...log.keys()]) if (index >= first) log.delete(index);
        for (let index = first; index <= last; index++) log.set(index, { round, last });
        if (++acknowledgements >= killAfter) {
          killed = true;
          child.kill("SIGKILL");
        }
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL") reject(new Error(`child exited by itself (code ${code}); stderr: ${stderr}`));
      else resolve({ acknowledgements, stderr });
    });
  });
}

/**
 * Opens the WAL the child left and lists every way it breaks the promise:
 * acknowledged entries missing or different, entries that are not what any
 * append wrote there, or an append only partly present. Then makes what was
 * recovered the new truth for the next round (unacknowledged but durable
 * appends are legitimately kept).
 */
async function checkRecovered(directory: string, acknowledged: Acknowledged): Promise<string[]> {
  const problems: string[] = [];
  const wal = await Wal.open({ fileSystem: new NodeFileSystem(), directory, clusterId: clusterId(0xc0ffee), nodeId: nodeId(0x5eed), segmentBytes: 16384 });
  try {
    for (let group = 0; group < GROUPS; group++) {
      const id = groupId(group);
      const first = wal.firstIndex(id);
      const last = wal.lastIndex(id);
      const log = acknowledged[group];
      for (const [index, expected] of log) {
        if (index < first) continue;
        if (index > last) {
          problems.push(`group ${group}: acknowledged entry ${index} (round ${expected.round}) is missing; the log ends at ${last}`);
          continue;
        }
        const text = Buffer.from(wal.entries(id, index, index + 1)[0].data).toString();
        if (!text.startsWith(`g=${group} i=${index} r=${expected.round} last=${expected.last} `)) {
          problems.push(`group ${group}: acknowledged entry ${index} reads back as "${text.slice(0, 40)}"`);
        }
      }
      const recovered = first <= last ? wal.entries(id, first, last + 1) : [];
      const fresh = new Map<number, { round: number; last: number }>();
      for (const entry of recovered) {
        const match = /^g=(\d+) i=(\d+) r=(\d+) last=(\d+) x*$/.exec(Buffer.from(entry.data).toString());
        if (!match || Number(match[1]) !== group || Number(match[2]) !== entry.index || Number(match[3]) !== entry.term) {
          problems.push(`group ${group}: entry ${entry.index} does not belong there`);
          continue;
        }
        fresh.set(entry.index, { round: Number(match[3]), last: Number(match[4]) });
      }
      const tail = fresh.get(last);
      if (tail && tail.last !== last) problems.push(`group ${group}: the log ends at ${last}, inside an append that ends at ${tail.last}: half visible`);
      acknowledged[group] = fresh;
    }
  } finally {
    await wal.close();
  }
  return problems;
}

async function crashRounds(fault: string, rounds: number, seed: number, stopAtFirstProblem: boolean): Promise<string[][]> {
  const directory = mkdtempSync(join(scratch, `${fault}-`));
  const prng = createPrng(seed);
  const acknowledged: Acknowledged = Array.from({ length: GROUPS }, () => new Map());
  const problemsByRound: string[][] = [];
  for (let round = 1; round <= rounds; round++) {
    const killAfter = prng.between(4, 80);
    const run = await runChild(directory, round, prng.nextUint32(), fault, killAfter, acknowledged);
    expect(run.acknowledgements).toBe(killAfter);
    const problems = await checkRecovered(directory, acknowledged);
    problemsByRound.push(problems);
    if (stopAtFirstProblem && problems.length > 0) break;
  }
  return problemsByRound;
}

describe("the WAL killed with SIGKILL on the power-cut layer", () => {
  it("keeps every acknowledged append and shows no append half", async () => {
    const problems = await crashRounds("none", HONEST_ROUNDS, 20261126, false);
    expect(problems).toEqual(Array.from({ length: HONEST_ROUNDS }, () => []));
  });

  it("catches the planted fault of acknowledging before the fdatasync", async () => {
    const problems = await crashRounds("ack-before-sync", FAULTY_ROUNDS_MAX, 7, true);
    const found = problems.flat();
    expect(found.length).toBeGreaterThan(0);
    expect(found.some((problem) => problem.includes("acknowledged entry") && problem.includes("missing"))).toBe(true);
  });
});
