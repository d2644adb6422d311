/**
 * `npm run bench -- checker [--json] [--seeds 5]`: how long the fault
 * harness's linearizability checker takes on a synthetic 5,000-operation
 * history over 10 keys and 20 clients (test/faults/check/generate.ts: a
 * correct register, with 5% and with 20% of outcomes unknown), which is the size of a short
 * fault run. No anchor runs beside it: the brute-force reference the
 * checker's tests compare against is factorial and cannot finish at this size.
 */
import type { BenchContext } from "./common.js";
import { generateHistory } from "../test/faults/check/generate.js";
import { checkLinearizable } from "../test/faults/check/linearizability.js";

const OPERATIONS = 5_000;
const KEYS = 10;
const CLIENTS = 20;

export async function run(context: BenchContext): Promise<void> {
  const seeds = Number(context.option("seeds", "5"));
  for (const unknownProbability of [0.05, 0.2]) for (let seed = 1; seed <= seeds; seed++) {
    const history = generateHistory({ seed, clients: CLIENTS, operations: OPERATIONS, keys: KEYS, unknownProbability });
    const started = performance.now();
    const report = checkLinearizable(history);
    const elapsedMs = performance.now() - started;
    const states = report.keys.reduce((sum, verdict) => sum + verdict.statesExplored, 0);
    context.report({
      seed, operations: OPERATIONS, unknown_share: unknownProbability, keys: KEYS, clients: CLIENTS, valid: report.valid,
      check_ms: Number(elapsedMs.toFixed(1)), states_explored: states, operations_per_s: Math.round(OPERATIONS / (elapsedMs / 1000)),
    });
  }
}
