/**
 * The harness's clients: many logical clients, each on its own connection
 * (src/client with one endpoint, a random member), each issuing one
 * operation at a time on a small set of live keys: linearizable reads,
 * puts, compare-and-swaps (a Txn on mod_revision or on the value) and
 * deletes, each with its own deadline. An operation that fails in a way that
 * leaves its effect open is recorded as unknown, never as failed; after one,
 * the client takes a fresh connection to another random member.
 *
 * Keys retire after a few hundred operations and fresh ones replace them, so
 * no key's history grows past what the checker searches quickly.
 */
import { Client, EtcdClientError, compare, op, type EtcdErrorKind } from "../../src/client/mod.js";
import type { Prng } from "../../src/lib/prng.js";
import type { Operation } from "./check/history.js";

/** Refusals that prove a write was never proposed (src/client/retry-policy.ts gives up with one of these only then). */
const NOT_APPLIED_KINDS: ReadonlySet<EtcdErrorKind> = new Set<EtcdErrorKind>(["noLeader", "notLeader", "notSupportedForLearner", "notCapable", "tooManyRequests"]);

export const KEY_PREFIX = "faults/";

export interface WorkloadOptions {
  readonly clients: number;
  readonly endpoints: readonly string[];
  readonly operationTimeoutMs: number;
  readonly liveKeys: number;
  readonly operationsPerKeyMax: number;
  /** Pause between one client's operations, at most (ms); keeps a 2-core machine from saturating. */
  readonly thinkTimeMsMax: number;
  readonly random: Prng;
  readonly now: () => number;
  readonly record: (operation: Operation) => void;
}

interface KeySlot {
  key: string;
  operations: number;
}

export class Workload {
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private readonly slots: KeySlot[] = [];
  private keyCounter = 0;
  private operationCounter = 0;
  private readonly lastSeen = new Map<string, { value: string | null; modRevision: number }>();
  readonly keysUsed: string[] = [];
  readonly counts = { ok: 0, fail: 0, unknown: 0 };

  constructor(private readonly options: WorkloadOptions) {
    for (let index = 0; index < options.liveKeys; index++) this.slots.push(this.freshSlot());
  }

  start(): void {
    this.running = true;
    for (let client = 0; client < this.options.clients; client++) this.loops.push(this.loop(client, this.options.random.fork()));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private freshSlot(): KeySlot {
    const key = `${KEY_PREFIX}k${String(this.keyCounter++).padStart(4, "0")}`;
    this.keysUsed.push(key);
    return { key, operations: 0 };
  }

  private pickKey(random: Prng): string {
    const index = random.int(this.slots.length);
    const slot = this.slots[index];
    slot.operations++;
    if (slot.operations >= this.options.operationsPerKeyMax) this.slots[index] = this.freshSlot();
    return slot.key;
  }

  private connect(random: Prng): Client {
    const endpoint = random.pick(this.options.endpoints);
    return new Client({ endpoints: [endpoint], commandTimeoutMs: this.options.operationTimeoutMs, dialTimeoutMs: Math.min(1000, this.options.operationTimeoutMs) });
  }

  private async loop(client: number, random: Prng): Promise<void> {
    let connection = this.connect(random);
    try {
      while (this.running) {
        const outcome = await this.operate(connection, client, random);
        if (outcome === "unknown") {
          void connection.close();
          connection = this.connect(random);
        }
        await new Promise((resolve) => setTimeout(resolve, random.int(this.options.thinkTimeMsMax + 1)));
      }
    } finally {
      await connection.close();
    }
  }

  private async operate(connection: Client, client: number, random: Prng): Promise<Operation["outcome"]> {
    const key = this.pickKey(random);
    const id = this.operationCounter++;
    const value = `${client}-${id}`;
    const roll = random.float();
    const seen = this.lastSeen.get(key);
    const kind: Operation["kind"] = roll < 0.4 ? "read" : roll < 0.65 ? "write" : roll < 0.8 ? "cas-revision" : roll < 0.9 ? "cas-value" : "delete";
    const base = { id, client, key, kind };
    const startMs = this.options.now();
    let fields: Partial<Operation> = {};
    if (kind === "cas-revision") fields = { value, expectedModRevision: seen?.modRevision ?? 0 };
    if (kind === "cas-value") fields = { value, expectedValue: seen?.value ?? `${client}-never` };
    if (kind === "write") fields = { value };
    try {
      let result: Partial<Operation>;
      if (kind === "read") {
        const response = await connection.kv.get(key);
        const found = response.kvs[0];
        const readValue = found ? new TextDecoder().decode(found.value) : null;
        result = { readValue, readModRevision: found?.modRevision };
        this.lastSeen.set(key, { value: readValue, modRevision: found?.modRevision ?? 0 });
      } else if (kind === "write") {
        const response = await connection.kv.put(key, value);
        result = { revision: response.header?.revision };
      } else if (kind === "delete") {
        const response = await connection.kv.delete(key);
        result = { deleted: response.deleted, revision: response.deleted > 0 ? response.header?.revision : undefined };
      } else {
        const guard = kind === "cas-revision" ? compare.modRevision(key, "=", fields.expectedModRevision ?? 0) : compare.value(key, "=", fields.expectedValue ?? "");
        const response = await connection.kv.transaction().compare(guard).success(op.put(key, value)).commit();
        result = { succeeded: response.succeeded, revision: response.succeeded ? response.header?.revision : undefined };
      }
      this.finish({ ...base, ...fields, ...result, startMs, endMs: this.options.now(), outcome: "ok" });
      return "ok";
    } catch (error) {
      const certain = kind === "read" || (error instanceof EtcdClientError && error.kind !== undefined && NOT_APPLIED_KINDS.has(error.kind));
      const outcome = certain ? "fail" : "unknown";
      this.finish({ ...base, ...fields, startMs, endMs: this.options.now(), outcome });
      return outcome;
    }
  }

  private finish(operation: Operation): void {
    const cleaned = Object.fromEntries(Object.entries(operation).filter(([, value]) => value !== undefined)) as unknown as Operation;
    this.counts[cleaned.outcome]++;
    this.options.record(cleaned);
  }
}
