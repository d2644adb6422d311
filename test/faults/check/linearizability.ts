/**
 * A linearizability checker for etcd's key-value register: read, write
 * (put), compare-and-swap on the value or on mod_revision (a Txn), delete.
 * Each key is an independent register (etcd's single-key operations
 * linearize per key if they linearize at all), so each is searched alone.
 *
 * The search is Wing & Gong's, with Lowe's memoization: walk the history's
 * call/return entries in time order; at a call, try to linearize that
 * operation now (the model must accept it in the current state) and remove it
 * from the list; at a return whose operation is still pending, no order of
 * what came before works, so undo the last choice. A (set of linearized
 * operations, state) pair already explored is never explored again, which is
 * what keeps the search polynomial on real histories.
 *
 * Operations with an unknown outcome have no return: they may take effect at
 * any point after their call, or never. Reads with an unknown outcome say
 * nothing and are dropped, as are operations that certainly failed.
 *
 * On failure the checker reports a window: a small set of the key's
 * operations, contiguous in call order, that cannot be linearized from ANY
 * initial state of the key, so the lines to read are few.
 */
import { describeOperation, groupByKey, validateOperation, type Operation } from "./history.js";

/** The register: the key's value, or null when the key does not exist. */
type State = string | null;

/** States explored per key before the search gives up and calls the key inconclusive. */
export const SEARCH_STATES_MAX_DEFAULT = 2_000_000;

export interface KeyVerdict {
  readonly key: string;
  readonly result: "linearizable" | "not-linearizable" | "inconclusive";
  readonly operations: number;
  /** (linearized set, state) pairs the search visited. */
  readonly statesExplored: number;
  /** not-linearizable: the smallest window found that admits no linearization from any starting state. */
  readonly window?: readonly Operation[];
  readonly reason?: string;
}

export interface LinearizabilityReport {
  readonly valid: boolean;
  readonly keys: readonly KeyVerdict[];
  readonly failures: readonly KeyVerdict[];
  readonly inconclusive: readonly KeyVerdict[];
}

export interface CheckOptions {
  readonly searchStatesMax?: number;
}

/** An operation prepared for the model: what it compares against is resolved to a value. */
interface Step {
  readonly operation: Operation;
  /** cas-*: the state the compare holds in ("none" when no state satisfies it). */
  readonly expected: State | "none";
}

function applyStep(state: State, step: Step): State | undefined {
  const { operation } = step;
  const known = operation.outcome === "ok";
  switch (operation.kind) {
    case "read":
      return state === operation.readValue ? state : undefined;
    case "write":
      return operation.value ?? null;
    case "cas-value":
    case "cas-revision": {
      const holds = step.expected !== "none" && state === step.expected;
      if (known && holds !== operation.succeeded) return undefined;
      return holds ? (operation.value ?? null) : state;
    }
    case "delete":
      if (known && (state !== null) !== ((operation.deleted ?? 0) > 0)) return undefined;
      return null;
  }
}

/**
 * The value each revision wrote, learned from acknowledged writes and from
 * reads. Two different values at one revision is itself a violation.
 */
function revisionsOf(operations: readonly Operation[]): { values: Map<number, string>; conflict?: string } {
  const values = new Map<number, string>();
  const learn = (revision: number | undefined, value: string | null | undefined, operation: Operation): string | undefined => {
    if (revision === undefined || revision <= 0 || typeof value !== "string") return undefined;
    const previous = values.get(revision);
    if (previous !== undefined && previous !== value) {
      return `revision ${revision} holds ${JSON.stringify(previous)} and also ${JSON.stringify(value)} (${describeOperation(operation)})`;
    }
    values.set(revision, value);
    return undefined;
  };
  for (const operation of operations) {
    if (operation.outcome !== "ok") continue;
    const conflict = operation.kind === "read"
      ? learn(operation.readModRevision, operation.readValue, operation)
      : operation.kind === "write" || operation.succeeded === true ? learn(operation.revision, operation.value, operation) : undefined;
    if (conflict !== undefined) return { values, conflict };
  }
  return { values };
}

function prepare(operations: readonly Operation[], revisionValues: ReadonlyMap<number, string>): Step[] {
  const steps: Step[] = [];
  for (const operation of operations) {
    if (operation.outcome === "fail") continue;
    if (operation.kind === "read" && operation.outcome !== "ok") continue;
    let expected: State | "none" = "none";
    if (operation.kind === "cas-value") expected = operation.expectedValue ?? "none";
    if (operation.kind === "cas-revision") {
      expected = operation.expectedModRevision === 0 ? null : (revisionValues.get(operation.expectedModRevision ?? -1) ?? "none");
    }
    steps.push({ operation, expected });
  }
  return steps;
}

interface Entry {
  readonly step: number;
  readonly call: boolean;
  readonly time: number;
  match: Entry | null;
  previous: Entry | null;
  next: Entry | null;
}

function buildEntries(steps: readonly Step[]): Entry {
  const entries: Entry[] = [];
  steps.forEach((step, index) => {
    const call: Entry = { step: index, call: true, time: step.operation.startMs, match: null, previous: null, next: null };
    const end = step.operation.outcome === "ok" ? step.operation.endMs : Number.POSITIVE_INFINITY;
    const ret: Entry = { step: index, call: false, time: end, match: null, previous: null, next: null };
    call.match = ret;
    entries.push(call, ret);
  });
  // Calls before returns at equal times: touching operations count as concurrent, the permissive reading.
  entries.sort((a, b) => a.time - b.time || Number(b.call) - Number(a.call) || a.step - b.step);
  const head: Entry = { step: -1, call: false, time: Number.NEGATIVE_INFINITY, match: null, previous: null, next: null };
  let last = head;
  for (const entry of entries) {
    last.next = entry;
    entry.previous = last;
    last = entry;
  }
  return head;
}

function lift(entry: Entry): void {
  const ret = entry.match as Entry;
  (entry.previous as Entry).next = entry.next;
  if (entry.next) entry.next.previous = entry.previous;
  (ret.previous as Entry).next = ret.next;
  if (ret.next) ret.next.previous = ret.previous;
}

function unlift(entry: Entry): void {
  const ret = entry.match as Entry;
  (ret.previous as Entry).next = ret;
  if (ret.next) ret.next.previous = ret;
  (entry.previous as Entry).next = entry;
  if (entry.next) entry.next.previous = entry;
}

interface SearchResult {
  readonly result: "linearizable" | "not-linearizable" | "inconclusive";
  readonly statesExplored: number;
  /** not-linearizable: the step whose return could not be reached at the deepest point of the search. */
  readonly stuckStep?: number;
}

/** Wing & Gong / Lowe over the steps, from `initial`. */
function search(steps: readonly Step[], initial: State, statesMax: number): SearchResult {
  if (steps.length === 0) return { result: "linearizable", statesExplored: 0 };
  const head = buildEntries(steps);
  const words = Math.ceil(steps.length / 32);
  const linearized = new Uint32Array(words);
  const seen = new Set<string>();
  const stack: { entry: Entry; state: State }[] = [];
  let state = initial;
  let entry = head.next as Entry;
  let deepest = -1;
  let stuckStep = -1;
  while (true) {
    if (entry.call) {
      const next = applyStep(state, steps[entry.step]);
      let advanced = false;
      if (next !== undefined) {
        const word = entry.step >>> 5;
        const bit = 1 << (entry.step & 31);
        linearized[word] |= bit;
        const memo = `${linearized.join(",")}|${next === null ? "\u0000" : `=${next}`}`;
        if (!seen.has(memo)) {
          seen.add(memo);
          if (seen.size > statesMax) return { result: "inconclusive", statesExplored: seen.size };
          stack.push({ entry, state });
          state = next;
          lift(entry);
          advanced = true;
          if (head.next === null) return { result: "linearizable", statesExplored: seen.size };
          entry = head.next;
        } else {
          linearized[word] &= ~bit;
        }
      }
      if (!advanced) {
        if (entry.next === null) throw new Error("a call entry is always followed by its return");
        entry = entry.next;
      }
      continue;
    }
    // A return: everything still in the list is pending. Returns at infinity belong to operations that may never
    // take effect, so reaching one means every operation that did return has been linearized.
    if (entry.time === Number.POSITIVE_INFINITY) return { result: "linearizable", statesExplored: seen.size };
    if (stack.length > deepest) {
      deepest = stack.length;
      stuckStep = entry.step;
    }
    const top = stack.pop();
    if (top === undefined) return { result: "not-linearizable", statesExplored: seen.size, stuckStep };
    state = top.state;
    linearized[top.entry.step >>> 5] &= ~(1 << (top.entry.step & 31));
    unlift(top.entry);
    entry = top.entry.next as Entry;
  }
}

/** A state no operation mentions: stands for every value the window does not name. */
const OTHER_VALUE = "\u0000some other value";

/** Whether the steps admit no linearization from any starting state of the key. */
function failsFromAnyState(steps: readonly Step[], statesMax: number): boolean {
  const starts = new Set<State>([null, OTHER_VALUE]);
  for (const { operation, expected } of steps) {
    if (typeof operation.readValue === "string") starts.add(operation.readValue);
    if (operation.value !== undefined) starts.add(operation.value);
    if (expected !== "none") starts.add(expected);
  }
  for (const start of starts) {
    if (search(steps, start, statesMax).result !== "not-linearizable") return false;
  }
  return true;
}

/**
 * Narrows a failing key down to a window of steps contiguous in call order
 * that fails from any starting state: first the latest start that still
 * fails, then the earliest end. Both are found by bisection and the result
 * verified; when bisection meets a non-monotone case, the wider window stands.
 */
function smallestWindow(steps: readonly Step[], stuckStep: number, statesMax: number): Step[] {
  const stuck = steps[stuckStep].operation;
  const candidates = steps.filter((step) => step.operation.startMs <= stuck.endMs)
    .sort((a, b) => a.operation.startMs - b.operation.startMs || a.operation.id - b.operation.id);
  const fails = (from: number, to: number): boolean => failsFromAnyState(candidates.slice(from, to), statesMax);
  if (!fails(0, candidates.length)) return candidates;
  let low = 0;
  let high = candidates.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (fails(middle, candidates.length)) low = middle;
    else high = middle - 1;
  }
  const from = low;
  low = from + 1;
  high = candidates.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (fails(from, middle)) high = middle;
    else low = middle + 1;
  }
  return candidates.slice(from, low);
}

export function checkKey(key: string, operations: readonly Operation[], options: CheckOptions = {}): KeyVerdict {
  const statesMax = options.searchStatesMax ?? SEARCH_STATES_MAX_DEFAULT;
  for (const operation of operations) validateOperation(operation);
  const { values, conflict } = revisionsOf(operations);
  if (conflict !== undefined) {
    return { key, result: "not-linearizable", operations: operations.length, statesExplored: 0, reason: conflict, window: [] };
  }
  const steps = prepare(operations, values);
  const outcome = search(steps, null, statesMax);
  if (outcome.result !== "not-linearizable") return { key, result: outcome.result, operations: operations.length, statesExplored: outcome.statesExplored };
  const window = smallestWindow(steps, outcome.stuckStep ?? 0, statesMax).map((step) => step.operation);
  return {
    key, result: "not-linearizable", operations: operations.length, statesExplored: outcome.statesExplored, window,
    reason: `no order of these ${window.length} operations on ${JSON.stringify(key)} is legal from any starting value`,
  };
}

/** Checks every key of the history independently (each key starts out missing). */
export function checkLinearizable(operations: readonly Operation[], options: CheckOptions = {}): LinearizabilityReport {
  const keys = [...groupByKey(operations)].map(([key, list]) => checkKey(key, list, options));
  const failures = keys.filter((verdict) => verdict.result === "not-linearizable");
  const inconclusive = keys.filter((verdict) => verdict.result === "inconclusive");
  return { valid: failures.length === 0 && inconclusive.length === 0, keys, failures, inconclusive };
}

export function formatVerdict(verdict: KeyVerdict): string {
  const lines = [`key ${JSON.stringify(verdict.key)}: ${verdict.result}${verdict.reason ? ` — ${verdict.reason}` : ""}`];
  for (const operation of verdict.window ?? []) lines.push(`  ${describeOperation(operation)}`);
  return lines.join("\n");
}
