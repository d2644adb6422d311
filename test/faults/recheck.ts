/**
 * `node dist/test/faults/recheck.js <results-dir-or-history.jsonl>`: runs the
 * linearizability checker again over a recorded history (e.g. after a
 * checker change, or to read a failure's windows at leisure).
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Operation } from "./check/history.js";
import { checkLinearizable, formatVerdict } from "./check/linearizability.js";

export function readHistory(path: string): Operation[] {
  const file = statSync(path).isDirectory() ? join(path, "history.jsonl") : path;
  const operations: Operation[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    const record = JSON.parse(line) as { type: string } & Operation;
    if (record.type !== "operation") continue;
    const { type: _type, ...operation } = record;
    operations.push(operation);
  }
  return operations;
}

const target = process.argv[2];
if (target === undefined) {
  process.stderr.write("usage: node dist/test/faults/recheck.js <results-dir-or-history.jsonl>\n");
  process.exit(2);
}
const operations = readHistory(target);
const started = performance.now();
const report = checkLinearizable(operations);
process.stdout.write(`${operations.length} operations, ${report.keys.length} keys, checked in ${(performance.now() - started).toFixed(0)} ms: ${report.valid ? "linearizable" : "NOT linearizable"}\n`);
for (const verdict of [...report.failures, ...report.inconclusive]) process.stdout.write(formatVerdict(verdict) + "\n");
process.exit(report.valid ? 0 : 1);
