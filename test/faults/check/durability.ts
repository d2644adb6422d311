/**
 * The durability checker: after the run, with every fault healed (and after
 * all members were killed at once and restarted, when the schedule did so), a
 * final read of every key must show each acknowledged write, unless another
 * change to the key could legitimately have come after it.
 *
 * "Could have come after": another operation that may have changed the key
 * (acknowledged, or with an unknown outcome) and did not finish before the
 * acknowledged write started. Real time is the only order this checker
 * trusts; the linearizability checker does the finer reasoning.
 */
import { describeOperation, groupByKey, mayHaveWritten, validateOperation, type Operation } from "./history.js";

export interface FinalValue {
  /** null: the key does not exist. */
  readonly value: string | null;
  readonly modRevision: number;
}

export interface DurabilityViolation {
  readonly key: string;
  readonly kind: "lost-write" | "unexplained-value" | "revision-mismatch";
  readonly message: string;
}

export interface DurabilityReport {
  readonly valid: boolean;
  readonly acknowledgedWrites: number;
  readonly keysRead: number;
  readonly violations: readonly DurabilityViolation[];
}

function couldFollow(later: Operation, earlier: Operation): boolean {
  if (later.id === earlier.id || !mayHaveWritten(later)) return false;
  // An unknown outcome may take effect at any time after its start.
  return later.outcome === "unknown" || later.endMs > earlier.startMs;
}

/**
 * `finalValues` holds the final read of every key the history touched (a key
 * absent from the map was not read and is reported).
 */
export function checkDurability(operations: readonly Operation[], finalValues: ReadonlyMap<string, FinalValue>): DurabilityReport {
  const violations: DurabilityViolation[] = [];
  let acknowledgedWrites = 0;
  for (const [key, list] of groupByKey(operations)) {
    for (const operation of list) validateOperation(operation);
    const final = finalValues.get(key);
    if (final === undefined) {
      violations.push({ key, kind: "lost-write", message: `key ${JSON.stringify(key)} has no final read` });
      continue;
    }
    const writers = list.filter((operation) => mayHaveWritten(operation) && operation.kind !== "delete");
    if (final.value !== null) {
      const source = writers.find((operation) => operation.value === final.value);
      if (!source) {
        violations.push({ key, kind: "unexplained-value", message: `final value ${JSON.stringify(final.value)} of ${JSON.stringify(key)} was never written` });
      } else if (source.outcome === "ok" && source.revision !== undefined && source.revision !== final.modRevision) {
        violations.push({
          key, kind: "revision-mismatch",
          message: `final value of ${JSON.stringify(key)} has mod_revision ${final.modRevision}, but its write was acknowledged at ${source.revision}: ${describeOperation(source)}`,
        });
      }
    }
    for (const write of list) {
      if (write.outcome !== "ok" || !mayHaveWritten(write)) continue;
      acknowledgedWrites++;
      const present = write.kind === "delete" ? final.value === null : final.value === write.value;
      if (present || list.some((other) => couldFollow(other, write))) continue;
      violations.push({
        key, kind: "lost-write",
        message: `acknowledged and never overwritten, yet the final read of ${JSON.stringify(key)} shows ${JSON.stringify(final.value)}: ${describeOperation(write)}`,
      });
    }
  }
  return { valid: violations.length === 0, acknowledgedWrites, keysRead: finalValues.size, violations };
}
