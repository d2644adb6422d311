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
 * On failure the checker reports a window: a short span of time whose
 * operations cannot be linearized from any starting state of the key (see
 * windowSteps for why that is a sound witness), so the lines to read are few.
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
  /** write, cas-*: the state it leaves (ANONYMOUS_VALUE for a value nobody ever observed). */
  readonly written: State;
  /**
   * Steps of one class have the same effect in every state and no answer to
   * check, so once they have all been called, linearizing one or another is
   * the same choice: the search tries only the first of a class at each
   * point. Unknown deletes form one class; unknown puts of values nobody
   * ever read or compared against form another (their values are all
   * replaced by ANONYMOUS_VALUE, which nothing can tell apart); unknown
   * compare-and-swaps of such values, one class per compared state.
   */
  readonly symmetry: string | null;
}

/** The value of a write nobody observed: no read returned it, no compare named it. */
const ANONYMOUS_VALUE = "\u0000a value nobody observed";

function applyStep(state: State, step: Step): State | undefined {
  const { operation } = step;
  const known = operation.outcome === "ok";
  switch (operation.kind) {
    case "read":
      return state === operation.readValue ? state : undefined;
    case "write":
      return step.written;
    case "cas-value":
    case "cas-revision": {
      const holds = step.expected !== "none" && state === step.expected;
      if (known && holds !== operation.succeeded) return undefined;
      return holds ? step.written : state;
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
  const observed = new Set<string>(revisionValues.values());
  for (const operation of operations) {
    if (operation.outcome === "ok" && typeof operation.readValue === "string") observed.add(operation.readValue);
    if (operation.expectedValue !== undefined) observed.add(operation.expectedValue);
  }
  const steps: Step[] = [];
  for (const operation of operations) {
    if (operation.outcome === "fail") continue;
    if (operation.kind === "read" && operation.outcome !== "ok") continue;
    let expected: State | "none" = "none";
    if (operation.kind === "cas-value") expected = operation.expectedValue ?? "none";
    if (operation.kind === "cas-revision") {
      expected = operation.expectedModRevision === 0 ? null : (revisionValues.get(operation.expectedModRevision ?? -1) ?? "none");
    }
    const unknown = operation.outcome === "unknown";
    // A compare that no state satisfies leaves an unknown swap with no effect at all.
    if (unknown && operation.kind.startsWith("cas") && expected === "none") continue;
    const anonymous = unknown && operation.value !== undefined && !observed.has(operation.value);
    let symmetry: string | null = null;
    if (unknown && operation.kind === "delete") symmetry = "delete";
    if (anonymous && operation.kind === "write") symmetry = "anonymous-write";
    if (anonymous && operation.kind.startsWith("cas")) symmetry = `anonymous-swap-from:${expected === null ? "missing" : `=${String(expected)}`}`;
    steps.push({ operation, expected, written: anonymous ? ANONYMOUS_VALUE : (operation.value ?? null), symmetry });
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
  // Per search depth: the symmetry classes already tried at that point (see Step.symmetry).
  const tried: Set<string>[] = [new Set()];
  while (true) {
    if (entry.call) {
      const symmetry = steps[entry.step].symmetry;
      if (symmetry !== null && tried[tried.length - 1].has(symmetry)) {
        entry = entry.next as Entry;
        continue;
      }
      const next = applyStep(state, steps[entry.step]);
      let advanced = false;
      // An unknown operation that would change nothing now is better left pending: it can still take effect later, or never.
      const idle = next === state && steps[entry.step].operation.outcome === "unknown";
      if (next !== undefined && !idle) {
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
          tried.push(new Set());
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
    const top = stack.pop();
    if (top === undefined) return { result: "not-linearizable", statesExplored: seen.size };
    state = top.state;
    linearized[top.entry.step >>> 5] &= ~(1 << (top.entry.step & 31));
    unlift(top.entry);
    tried.pop();
    const symmetry = steps[top.entry.step].symmetry;
    if (symmetry !== null) tried[tried.length - 1].add(symmetry);
    entry = top.entry.next as Entry;
  }
}

/** A state no operation mentions: stands for every value the window does not name. */
const OTHER_VALUE = "\u0000some other value";

/** Whether the steps admit no linearization from any starting state of the key. */
function failsFromAnyState(steps: readonly Step[], statesMax: number): boolean {
  const starts = new Set<State>([null, OTHER_VALUE]);
  for (const { operation, expected, written } of steps) {
    if (typeof operation.readValue === "string") starts.add(operation.readValue);
    starts.add(written);
    if (expected !== "none") starts.add(expected);
  }
  for (const start of starts) {
    if (search(steps, start, statesMax).result !== "not-linearizable") return false;
  }
  return true;
}

/**
 * The key's history seen through the time window [from, to]: operations that
 * ended before `from` or started after `to` are left out, and operations
 * that cross an edge lose their answers (they become unknown: they may or
 * may not have taken effect inside the window; a read that crosses an edge
 * says nothing and goes). If the whole history is linearizable, so is every
 * such window from SOME starting state: the linearization's own order,
 * restricted to the window, is one. So a window that fails from every
 * starting state is a sound witness, and a wider window over a failing one
 * fails too, which lets bisection find the edges.
 */
function windowSteps(steps: readonly Step[], from: number, to: number): Step[] {
  const inside: Step[] = [];
  for (const step of steps) {
    const { operation } = step;
    const end = operation.outcome === "ok" ? operation.endMs : Number.POSITIVE_INFINITY;
    if (operation.startMs > to || end < from) continue;
    if (operation.outcome === "ok" && (operation.startMs < from || end > to)) {
      if (operation.kind === "read") continue;
      inside.push({ ...step, operation: { ...operation, outcome: "unknown" } });
    } else {
      inside.push(step);
    }
  }
  return inside;
}

/**
 * Narrows a failing key to a short window of time: first the earliest end
 * (the history cut there already fails from the key's real start, missing),
 * then the latest start (the window fails from any starting state). Both
 * edges are found by bisection over the operations' own times.
 */
function smallestWindow(steps: readonly Step[], statesMax: number): { steps: Step[]; from: number; to: number } {
  const ends = [...new Set(steps.filter((step) => step.operation.outcome === "ok").map((step) => step.operation.endMs))].sort((a, b) => a - b);
  let low = 0;
  let high = ends.length - 1;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (search(windowSteps(steps, Number.NEGATIVE_INFINITY, ends[middle]), null, statesMax).result === "not-linearizable") high = middle;
    else low = middle + 1;
  }
  const to = ends[low] ?? Number.POSITIVE_INFINITY;
  const starts = [...new Set(steps.map((step) => step.operation.startMs))].filter((time) => time <= to).sort((a, b) => a - b);
  if (!failsFromAnyState(windowSteps(steps, starts[0] ?? Number.NEGATIVE_INFINITY, to), statesMax)) {
    // Only the key's real start (missing) explains the failure: the window reaches back to the beginning.
    return { steps: windowSteps(steps, Number.NEGATIVE_INFINITY, to), from: Number.NEGATIVE_INFINITY, to };
  }
  low = 0;
  high = starts.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (failsFromAnyState(windowSteps(steps, starts[middle], to), statesMax)) low = middle;
    else high = middle - 1;
  }
  return { steps: windowSteps(steps, starts[low], to), from: starts[low], to };
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
  const found = smallestWindow(steps, statesMax);
  const window = found.steps.map((step) => step.operation);
  const span = Number.isFinite(found.from) ? `between ${found.from.toFixed(1)} and ${found.to.toFixed(1)} ms` : `up to ${found.to.toFixed(1)} ms`;
  const start = Number.isFinite(found.from) ? "from any starting value" : "from the key's start (missing)";
  return {
    key, result: "not-linearizable", operations: operations.length, statesExplored: outcome.statesExplored, window,
    reason: `no order of these ${window.length} operations ${span} is legal ${start} (operations crossing the window's edges count as unknown)`,
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
