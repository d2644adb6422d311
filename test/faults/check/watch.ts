/**
 * The watch checker: a watcher started at revision 1 over the run's keys
 * must see every committed change exactly once, in revision order, with no
 * gaps, and replaying what it saw must give exactly what a full read shows
 * at the end.
 *
 * The harness is the only writer and changes one key per revision, so
 * successive events carry successive revisions; `contiguous: false` relaxes
 * that for histories where other writers (or multi-key Txns) exist.
 */
import { describeOperation, type Operation } from "./history.js";
import type { FinalValue } from "./durability.js";

export interface WatchEvent {
  readonly type: "put" | "delete";
  readonly key: string;
  /** put: the value written. */
  readonly value?: string;
  /** The revision of the change (the put's mod_revision, or the delete's revision). */
  readonly revision: number;
}

export interface WatchViolation {
  readonly kind: "order" | "duplicate" | "gap" | "missed" | "unexplained" | "final-state";
  readonly message: string;
}

export interface WatchReport {
  readonly valid: boolean;
  readonly events: number;
  readonly violations: readonly WatchViolation[];
}

export interface WatchCheckOptions {
  /** Successive events must have successive revisions (one single-key change per revision). Default true. */
  readonly contiguous?: boolean;
  /** The revision of the final full read: the watcher must have reached it. */
  readonly finalRevision?: number;
}

const VIOLATIONS_LISTED_MAX = 50;

export function checkWatch(
  events: readonly WatchEvent[],
  operations: readonly Operation[],
  finalValues: ReadonlyMap<string, FinalValue>,
  options: WatchCheckOptions = {},
): WatchReport {
  const violations: WatchViolation[] = [];
  const report = (kind: WatchViolation["kind"], message: string): void => {
    if (violations.length < VIOLATIONS_LISTED_MAX) violations.push({ kind, message });
  };
  const contiguous = options.contiguous ?? true;
  const seen = new Set<string>();
  let previous: WatchEvent | undefined;
  for (const event of events) {
    const identity = `${event.revision}\u0000${event.key}`;
    if (seen.has(identity)) report("duplicate", `the change of ${JSON.stringify(event.key)} at revision ${event.revision} arrived twice`);
    seen.add(identity);
    if (previous !== undefined) {
      if (event.revision < previous.revision) report("order", `revision ${event.revision} arrived after ${previous.revision}`);
      else if (contiguous && event.revision > previous.revision + 1) report("gap", `revisions ${previous.revision + 1}..${event.revision - 1} never arrived`);
    }
    previous = event;
  }
  if (options.finalRevision !== undefined && (previous?.revision ?? 1) < options.finalRevision) {
    report("gap", `the watcher stopped at revision ${previous?.revision ?? 1}, the store is at ${options.finalRevision}`);
  }

  // Every acknowledged change arrived, as it was made.
  const byRevision = new Map<number, WatchEvent>();
  for (const event of events) byRevision.set(event.revision, event);
  for (const operation of operations) {
    if (operation.outcome !== "ok" || operation.revision === undefined) continue;
    const changed = operation.kind === "write" || (operation.kind.startsWith("cas") && operation.succeeded === true)
      || (operation.kind === "delete" && (operation.deleted ?? 0) > 0);
    if (!changed) continue;
    const event = byRevision.get(operation.revision);
    const expectedType = operation.kind === "delete" ? "delete" : "put";
    if (!event || event.key !== operation.key || event.type !== expectedType || (expectedType === "put" && event.value !== operation.value)) {
      report("missed", `no matching event for ${describeOperation(operation)}${event ? ` (revision ${event.revision} carried ${event.type} ${JSON.stringify(event.key)})` : ""}`);
    }
  }
  // Every put event carries a value someone wrote to that key.
  const written = new Set(operations.filter((operation) => operation.value !== undefined && operation.outcome !== "fail").map((operation) => `${operation.key}\u0000${operation.value}`));
  for (const event of events) {
    if (event.type === "put" && !written.has(`${event.key}\u0000${event.value}`)) {
      report("unexplained", `revision ${event.revision} put ${JSON.stringify(event.value)} into ${JSON.stringify(event.key)}, which no client wrote`);
    }
  }
  // Replaying the events gives the final state.
  const replayed = new Map<string, FinalValue>();
  for (const event of events) {
    if (event.type === "put") replayed.set(event.key, { value: event.value ?? "", modRevision: event.revision });
    else replayed.delete(event.key);
  }
  for (const [key, final] of finalValues) {
    const seenFinal = replayed.get(key);
    const expected = final.value === null ? "missing" : `${JSON.stringify(final.value)}@${final.modRevision}`;
    const got = seenFinal === undefined ? "missing" : `${JSON.stringify(seenFinal.value)}@${seenFinal.modRevision}`;
    if (expected !== got) report("final-state", `${JSON.stringify(key)}: a full read shows ${expected}, the watcher's replay ${got}`);
  }
  for (const key of replayed.keys()) {
    if (!finalValues.has(key)) report("final-state", `${JSON.stringify(key)} exists in the watcher's replay but not in the full read`);
  }
  return { valid: violations.length === 0, events: events.length, violations };
}
