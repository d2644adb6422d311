/**
 * Synthetic histories for the checkers' tests and benchmark: clients issue
 * operations one at a time against a correct register; each operation takes
 * effect at a random instant inside its interval (so concurrent operations
 * interleave in every order), unknown outcomes take effect or not at random,
 * and results are what the register answered. The history is linearizable by
 * construction, unless `corruptions` is set, which changes that many
 * answers afterwards (the result then may or may not be linearizable).
 */
import { Xoshiro128, type Prng } from "../../../src/lib/prng.js";
import type { Operation, OperationKind } from "./history.js";

export interface GenerateOptions {
  readonly seed: number;
  readonly clients: number;
  readonly operations: number;
  readonly keys: number;
  /** Probability that an operation's outcome is unknown. */
  readonly unknownProbability?: number;
  readonly corruptions?: number;
  /** Longest operation (time units). */
  readonly durationMax?: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Planned {
  operation: Operation;
  effectAt: number;
  takesEffect: boolean;
}

const KINDS: readonly OperationKind[] = ["read", "read", "write", "cas-value", "cas-revision", "delete"];

export function generateHistory(options: GenerateOptions): Operation[] {
  const random: Prng = new Xoshiro128(options.seed);
  const durationMax = options.durationMax ?? 10;
  const clocks = new Array<number>(options.clients).fill(0);
  const planned: Planned[] = [];
  let counter = 0;
  for (let id = 0; id < options.operations; id++) {
    const client = random.int(options.clients);
    const startMs = clocks[client] + random.float() * 2;
    const endMs = startMs + random.float() * durationMax;
    clocks[client] = endMs;
    const unknown = random.chance(options.unknownProbability ?? 0.05);
    const kind = random.pick(KINDS);
    const key = `k${random.int(options.keys)}`;
    const operation: Operation = { id, client, key, kind, startMs, endMs, outcome: unknown ? "unknown" : "ok" };
    if (kind === "write" || kind.startsWith("cas")) Object.assign(operation, { value: `v${counter++}` });
    // An unknown operation may still take effect long after the client gave up on it.
    const effectAt = startMs + random.float() * (endMs - startMs) * (unknown ? 3 : 1);
    planned.push({ operation, effectAt, takesEffect: !unknown || random.chance(0.5) });
  }
  // Compare targets are drawn from what the register held at the call, as a real client would have read them.
  planned.sort((a, b) => a.effectAt - b.effectAt);
  const state = new Map<string, { value: string; modRevision: number; published: boolean }>();
  // published: the client that wrote it got an answer, so its revision is known, as a harness client's would be from a read.
  const everWritten = new Map<string, { value: string; modRevision: number; published: boolean }[]>();
  let revision = 1;
  const results = new Map<number, Partial<Mutable<Operation>>>();
  for (const { operation, takesEffect } of planned) {
    const current = state.get(operation.key);
    const history = everWritten.get(operation.key) ?? [];
    const known = operation.kind === "cas-revision" ? history.filter((entry) => entry.published) : history;
    const readable = operation.kind === "cas-revision" && current !== undefined && !current.published ? undefined : current;
    const target = known.length > 0 && random.chance(0.6) ? random.pick(known) : readable;
    let result: Partial<Mutable<Operation>> = {};
    if (operation.kind === "read") {
      result = { readValue: current?.value ?? null, readModRevision: current?.modRevision };
    } else if (operation.kind === "cas-value" || operation.kind === "cas-revision") {
      const expectation = operation.kind === "cas-value"
        ? { expectedValue: target?.value ?? "never-written" }
        : { expectedModRevision: target?.modRevision ?? 0 };
      const holds = operation.kind === "cas-value"
        ? current !== undefined && current.value === expectation.expectedValue
        : (current?.modRevision ?? 0) === expectation.expectedModRevision;
      result = { ...expectation, succeeded: holds };
      if (holds && takesEffect) result.revision = ++revision;
    } else if (operation.kind === "write") {
      if (takesEffect) result = { revision: ++revision };
    } else {
      result = { deleted: current !== undefined ? 1 : 0 };
      if (current !== undefined && takesEffect) result.revision = ++revision;
    }
    if (takesEffect && result.revision !== undefined && operation.value !== undefined) {
      const written = { value: operation.value, modRevision: result.revision, published: operation.outcome === "ok" };
      state.set(operation.key, written);
      history.push(written);
      everWritten.set(operation.key, history);
    } else if (takesEffect && operation.kind === "delete") {
      state.delete(operation.key);
    }
    results.set(operation.id, result);
  }
  const operations = planned.map(({ operation }) => {
    const result = results.get(operation.id) ?? {};
    if (operation.outcome === "unknown") {
      // The client learns nothing; a compare's inputs are still known.
      return { ...operation, expectedValue: result.expectedValue, expectedModRevision: result.expectedModRevision } as Operation;
    }
    return { ...operation, ...result } as Operation;
  }).sort((a, b) => a.id - b.id);
  for (let index = 0; index < (options.corruptions ?? 0); index++) corrupt(operations, random);
  return operations.map(dropUndefined);
}

function dropUndefined(operation: Operation): Operation {
  return Object.fromEntries(Object.entries(operation).filter(([, value]) => value !== undefined)) as unknown as Operation;
}

function corrupt(operations: Operation[], random: Prng): void {
  const index = random.int(operations.length);
  const operation = operations[index];
  if (operation.outcome !== "ok") return;
  const values = operations.filter((other) => other.key === operation.key && other.value !== undefined).map((other) => other.value as string);
  switch (operation.kind) {
    case "read": {
      const value = values.length > 0 && random.chance(0.8) ? random.pick(values) : null;
      const source = operations.find((other) => other.key === operation.key && other.value === value && other.revision !== undefined);
      operations[index] = { ...operation, readValue: value, readModRevision: value === null ? undefined : source?.revision ?? operation.readModRevision };
      if (value !== null && source === undefined) operations[index] = { ...operations[index], readModRevision: undefined };
      break;
    }
    case "cas-value":
    case "cas-revision":
      operations[index] = { ...operation, succeeded: !operation.succeeded };
      break;
    case "delete":
      operations[index] = { ...operation, deleted: operation.deleted === 1 ? 0 : 1 };
      break;
    case "write":
      // Pretend it was acknowledged without taking effect: later reads never see it.
      break;
  }
}
