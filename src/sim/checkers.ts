/**
 * The Raft safety properties, checked incrementally as the simulated cluster
 * runs: every observation costs O(1) amortized (a map lookup or a small list
 * scan), so the checks run after every single step instead of rescanning logs.
 *
 *  - election safety: at most one leader per term, ever;
 *  - log matching: two persisted entries with the same index and term carry
 *    the same data and follow an entry of the same term (so, by induction,
 *    their whole prefixes agree);
 *  - leader completeness: a new leader's log holds the committed entries of
 *    earlier terms;
 *  - state machine safety: no two nodes apply different entries at one index,
 *    and nothing contradicts an index already known to be committed;
 *  - linearizable reads: a read served through ReadIndex (or a lease) reflects
 *    every write acknowledged to a client before the read was issued.
 */
import type { LogIndex, NodeId, Term } from "../lib/ids.js";

export type SafetyProperty =
  | "election-safety"
  | "log-matching"
  | "leader-completeness"
  | "state-machine-safety"
  | "linearizable-read"
  | "liveness"
  | "core-error"
  /** WAL mode: recovery came back without a record whose append was acknowledged (or with one never appended). */
  | "durability"
  /** WAL mode: the WAL refused to open (corruption), refused an append, or failed one. */
  | "storage-error";

export interface Violation {
  readonly property: SafetyProperty;
  readonly message: string;
  readonly timeMs: number;
}

/** What the checker needs to know about a node's log: the term at an index, if the node still holds it. */
export interface LogView {
  readonly snapshotIndex: LogIndex;
  readonly snapshotTerm: Term;
  readonly lastIndex: LogIndex;
  /** The term at index in (snapshotIndex, lastIndex]; snapshotTerm at snapshotIndex; undefined otherwise. */
  termAt(index: LogIndex): Term | undefined;
}

interface LoggedEntry {
  readonly term: Term;
  readonly previousTerm: Term;
  readonly digest: number;
  readonly node: NodeId;
}

interface AppliedEntry {
  readonly term: Term;
  /** -1 when only known from a snapshot (no data to compare). */
  readonly digest: number;
  readonly node: NodeId;
}

/** A maximal observed stretch of the committed log whose entries all have one term; `lastIndex` is the highest committed index seen with it. */
interface CommittedRun {
  readonly term: Term;
  lastIndex: LogIndex;
}

export class SafetyChecker {
  private violation: Violation | null = null;
  private nowMs = 0;
  private readonly leaderByTerm = new Map<Term, NodeId>();
  private readonly persistedByIndex = new Map<LogIndex, LoggedEntry[]>();
  private readonly committedTerms = new Map<LogIndex, Term>();
  private readonly committedRuns: CommittedRun[] = [];
  private readonly appliedByIndex = new Map<LogIndex, AppliedEntry>();
  private acknowledgedIndexMaxValue = 0;
  /** How many checks ran (a run that checked nothing is visible). */
  checks = 0;

  get firstViolation(): Violation | null {
    return this.violation;
  }

  get acknowledgedIndexMax(): LogIndex {
    return this.acknowledgedIndexMaxValue;
  }

  get committedIndexMax(): LogIndex {
    const last = this.committedRuns[this.committedRuns.length - 1];
    return last === undefined ? 0 : last.lastIndex;
  }

  /** The simulated time stamped on violations. */
  setTime(nowMs: number): void {
    this.nowMs = nowMs;
  }

  /** Records a violation found outside the checker (liveness, an exception thrown by the core). */
  report(property: SafetyProperty, message: string): void {
    if (this.violation === null) this.violation = { property, message, timeMs: this.nowMs };
  }

  /** `node` acts as leader of `term` with the given log. */
  observeLeader(node: NodeId, term: Term, log: LogView): void {
    this.checks++;
    const known = this.leaderByTerm.get(term);
    if (known === undefined) this.leaderByTerm.set(term, node);
    else if (known !== node) {
      this.report("election-safety", `two leaders in term ${term}: node ${known} and node ${node}`);
      return;
    }
    // The newest committed stretch from a term before this leader's term must be in its log.
    for (let position = this.committedRuns.length - 1; position >= 0; position--) {
      const run = this.committedRuns[position];
      if (run.term >= term) continue;
      if (run.lastIndex < log.snapshotIndex) return; // below its snapshot, which only holds committed state
      const held = log.termAt(run.lastIndex);
      if (held !== run.term) {
        this.report(
          "leader-completeness",
          `node ${node} leads term ${term} but holds ${held === undefined ? "nothing" : `term ${held}`} at index ${run.lastIndex}, committed with term ${run.term}`,
        );
      }
      return;
    }
  }

  /** `node` durably wrote the entry (index, term) right after an entry of `previousTerm`. */
  observePersisted(node: NodeId, index: LogIndex, term: Term, previousTerm: Term, digest: number): void {
    this.checks++;
    let list = this.persistedByIndex.get(index);
    if (list === undefined) {
      list = [];
      this.persistedByIndex.set(index, list);
    }
    for (const other of list) {
      if (other.term !== term) continue;
      if (other.digest !== digest) {
        this.report("log-matching", `index ${index} term ${term}: node ${other.node} and node ${node} persisted different data`);
      } else if (other.previousTerm !== previousTerm) {
        this.report(
          "log-matching",
          `index ${index} term ${term}: node ${other.node} has term ${other.previousTerm} before it, node ${node} has term ${previousTerm}`,
        );
      }
      return;
    }
    list.push({ term, previousTerm, digest, node });
  }

  /** `node` considers everything up to `index` committed, and holds `term` there. */
  observeCommit(node: NodeId, index: LogIndex, term: Term): void {
    if (index === 0) return;
    this.checks++;
    const known = this.committedTerms.get(index);
    if (known !== undefined && known !== term) {
      this.report("state-machine-safety", `index ${index} committed with term ${known} elsewhere, node ${node} committed term ${term}`);
      return;
    }
    this.committedTerms.set(index, term);
    const applied = this.appliedByIndex.get(index);
    if (applied !== undefined && applied.term !== term) {
      this.report("state-machine-safety", `node ${applied.node} applied term ${applied.term} at index ${index}, node ${node} committed term ${term}`);
      return;
    }
    const last = this.committedRuns[this.committedRuns.length - 1];
    if (last === undefined || index > last.lastIndex) {
      if (last !== undefined && term < last.term) {
        this.report("state-machine-safety", `committed terms decrease: index ${last.lastIndex} has term ${last.term}, later index ${index} has term ${term}`);
      } else if (last !== undefined && term === last.term) last.lastIndex = index;
      else this.committedRuns.push({ term, lastIndex: index });
    }
  }

  /** `node` applied the entry (index, term) with the given data digest to its state machine. */
  observeApply(node: NodeId, index: LogIndex, term: Term, digest: number): void {
    this.checks++;
    const known = this.appliedByIndex.get(index);
    if (known === undefined) {
      this.appliedByIndex.set(index, { term, digest, node });
    } else if (known.term !== term || (known.digest !== digest && known.digest !== -1 && digest !== -1)) {
      this.report(
        "state-machine-safety",
        `index ${index}: node ${known.node} applied term ${known.term} (data ${known.digest}), node ${node} applied term ${term} (data ${digest})`,
      );
      return;
    } else if (known.digest === -1 && digest !== -1) {
      this.appliedByIndex.set(index, { term, digest, node });
    }
    const committed = this.committedTerms.get(index);
    if (committed !== undefined && committed !== term) {
      this.report("state-machine-safety", `node ${node} applied term ${term} at index ${index}, which was committed with term ${committed}`);
    }
  }

  /** `node` restored its state machine from a snapshot at (index, term). */
  observeSnapshotRestore(node: NodeId, index: LogIndex, term: Term): void {
    this.observeApply(node, index, term, -1);
  }

  /** A client was told its write at `index` succeeded. */
  observeAcknowledged(index: LogIndex): void {
    if (index > this.acknowledgedIndexMaxValue) this.acknowledgedIndexMaxValue = index;
  }

  /** Called when a read is issued: the index its answer must reach (every write acknowledged so far). */
  readRequirement(): LogIndex {
    return this.acknowledgedIndexMaxValue;
  }

  /** A read issued when `requiredIndex` was acknowledged was answered from a state machine at `appliedIndex`. */
  observeRead(node: NodeId, appliedIndex: LogIndex, requiredIndex: LogIndex, readIndex: LogIndex): void {
    this.checks++;
    if (appliedIndex < requiredIndex) {
      this.report(
        "linearizable-read",
        `node ${node} served a read at applied index ${appliedIndex} (read index ${readIndex}) that must reflect the write acknowledged at index ${requiredIndex}`,
      );
    }
  }
}

/** FNV-1a over the bytes: a cheap fingerprint to compare entry data across nodes. */
export function digestBytes(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i], 0x01000193);
  return (hash ^ bytes.length) >>> 0;
}
