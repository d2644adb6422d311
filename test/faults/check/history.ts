/**
 * The operations a fault-injection run records, as the checkers read them.
 * One JSON object per line in a history file (see ../history-file.ts).
 *
 * Every operation touches one key. Values written are unique per key (the
 * harness writes "<client>-<counter>"), which is what lets a read, a
 * mod_revision and a watch event name the write they came from.
 */

export type OperationKind = "read" | "write" | "cas-value" | "cas-revision" | "delete";

/**
 * ok: the server answered. fail: it certainly did not take effect (an error
 * returned before the request could reach Raft, e.g. no leader known).
 * unknown: timeout or lost connection; it may take effect at any point after
 * its start, or never.
 */
export type Outcome = "ok" | "fail" | "unknown";

export interface Operation {
  /** Unique within the history. */
  readonly id: number;
  readonly client: number;
  readonly key: string;
  readonly kind: OperationKind;
  /** Monotonic milliseconds (one clock for the whole run). */
  readonly startMs: number;
  /** When the answer (or the give-up) arrived; an unknown operation may still take effect after this. */
  readonly endMs: number;
  readonly outcome: Outcome;
  /** write, cas-*: the value put. */
  readonly value?: string;
  /** cas-value: the value compared against (a missing key never equals a value, as in etcd). */
  readonly expectedValue?: string;
  /** cas-revision: the mod_revision compared against; 0 means "the key does not exist". */
  readonly expectedModRevision?: number;
  /** read (ok): the value seen, null when the key did not exist. */
  readonly readValue?: string | null;
  /** read (ok, key existed): its mod_revision. */
  readonly readModRevision?: number;
  /** cas-* (ok): whether the compare held and the put ran. */
  readonly succeeded?: boolean;
  /** write, successful cas-* (ok): the revision of the change, which is the key's new mod_revision. */
  readonly revision?: number;
  /** delete (ok): keys deleted (0 or 1). */
  readonly deleted?: number;
}

export class MalformedHistoryError extends Error {
  override name = "MalformedHistoryError";
}

/** Whether the operation may have changed its key (it matters to durability and to the search). */
export function mayHaveWritten(operation: Operation): boolean {
  if (operation.kind === "read" || operation.outcome === "fail") return false;
  if (operation.outcome === "unknown") return true;
  if (operation.kind === "delete") return (operation.deleted ?? 0) > 0;
  if (operation.kind === "write") return true;
  return operation.succeeded === true;
}

/** Checks the fields each kind and outcome needs; throws MalformedHistoryError on the first problem. */
export function validateOperation(operation: Operation): void {
  const problem = (text: string): never => {
    throw new MalformedHistoryError(`operation ${operation.id} (${operation.kind} ${operation.key}): ${text}`);
  };
  if (!(operation.endMs >= operation.startMs)) problem(`ends (${operation.endMs}) before it starts (${operation.startMs})`);
  const writes = operation.kind === "write" || operation.kind === "cas-value" || operation.kind === "cas-revision";
  if (writes && typeof operation.value !== "string") problem("has no value to write");
  if (operation.kind === "cas-value" && typeof operation.expectedValue !== "string") problem("has no expected value");
  if (operation.kind === "cas-revision" && !(Number.isSafeInteger(operation.expectedModRevision) && (operation.expectedModRevision ?? -1) >= 0)) {
    problem("has no expected mod_revision");
  }
  if (operation.outcome !== "ok") return;
  if (operation.kind === "read" && operation.readValue === undefined) problem("is an ok read without a value (null for a missing key)");
  if (operation.kind.startsWith("cas") && typeof operation.succeeded !== "boolean") problem("is an ok compare-and-swap without succeeded");
  if (operation.kind === "delete" && typeof operation.deleted !== "number") problem("is an ok delete without a deleted count");
}

export function groupByKey(operations: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const operation of operations) {
    let list = byKey.get(operation.key);
    if (!list) byKey.set(operation.key, list = []);
    list.push(operation);
  }
  return byKey;
}

export function describeOperation(operation: Operation): string {
  const time = `[${operation.startMs.toFixed(1)}, ${operation.outcome === "unknown" ? "?" : operation.endMs.toFixed(1)}]`;
  const head = `#${operation.id} c${operation.client} ${time} ${operation.outcome}`;
  switch (operation.kind) {
    case "read":
      return `${head} read ${operation.key} -> ${operation.outcome === "ok" ? `${JSON.stringify(operation.readValue)}@${operation.readModRevision ?? 0}` : "?"}`;
    case "write":
      return `${head} write ${operation.key} := ${JSON.stringify(operation.value)}${operation.revision !== undefined ? ` @${operation.revision}` : ""}`;
    case "cas-value":
      return `${head} cas ${operation.key} if value=${JSON.stringify(operation.expectedValue)} := ${JSON.stringify(operation.value)} -> ${String(operation.succeeded ?? "?")}`;
    case "cas-revision":
      return `${head} cas ${operation.key} if mod_revision=${operation.expectedModRevision} := ${JSON.stringify(operation.value)} -> ${String(operation.succeeded ?? "?")}`;
    case "delete":
      return `${head} delete ${operation.key} -> ${operation.deleted ?? "?"}`;
  }
}
