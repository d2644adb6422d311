/**
 * A bounded write load for the crash tests: several writers, each with its
 * own etcd3 client, put unique keys with unique values one after another and
 * retry after a failure with the next key. A write counts as acknowledged
 * only when the client saw its answer; one that failed has an unknown
 * outcome and is never counted, so "every acknowledged write survives" is a
 * claim about exactly what clients were told.
 */
import type { Etcd3 } from "etcd3";
import { assert } from "../../src/lib/assert.js";

/** How long one put may take before the writer gives up on it (longer than the server's own request timeout). */
const PUT_DEADLINE_MS = 8000;
/** Pause after a failed put, so a writer facing a dead member does not spin. */
const RETRY_PAUSE_MS = 25;

export interface WriterRecord {
  /** Date.now() of each acknowledgement, in order. */
  readonly acknowledgedAtMs: number[];
  readonly failures: { atMs: number; message: string }[];
}

export class WriteLoad {
  /** key → value of every write whose success the client saw. */
  readonly acknowledged = new Map<string, string>();
  readonly writers: WriterRecord[] = [];
  private stopRequested = false;
  private running: Promise<void>[] = [];

  constructor(
    private readonly clients: readonly Etcd3[],
    private readonly prefix: string,
    private readonly writesPerWriterMax: number,
    private readonly durationMsMax: number,
  ) {
    assert(clients.length > 0, "a load needs at least one client");
  }

  start(): void {
    assert(this.running.length === 0, "the load is already running");
    const deadline = Date.now() + this.durationMsMax;
    this.running = this.clients.map((client, writer) => {
      const record: WriterRecord = { acknowledgedAtMs: [], failures: [] };
      this.writers.push(record);
      return this.write(client, writer, record, deadline);
    });
  }

  private async write(client: Etcd3, writer: number, record: WriterRecord, deadline: number): Promise<void> {
    for (let sequence = 0; sequence < this.writesPerWriterMax && !this.stopRequested && Date.now() < deadline; sequence++) {
      const key = `${this.prefix}/w${writer}/${String(sequence).padStart(6, "0")}`;
      const value = `writer ${writer} write ${sequence} ${Math.random().toString(36).slice(2)}`;
      try {
        await client.put(key).value(value).options({ deadline: Date.now() + PUT_DEADLINE_MS });
        this.acknowledged.set(key, value);
        record.acknowledgedAtMs.push(Date.now());
      } catch (error) {
        record.failures.push({ atMs: Date.now(), message: (error as Error).message });
        await new Promise((resolvePause) => setTimeout(resolvePause, RETRY_PAUSE_MS));
      }
    }
  }

  /** Acknowledgements each writer received after the given time. */
  acknowledgedSince(sinceMs: number): number[] {
    return this.writers.map((record) => record.acknowledgedAtMs.filter((at) => at > sinceMs).length);
  }

  /** Waits (bounded) until every writer has at least `count` acknowledgements after sinceMs. */
  async waitForProgress(sinceMs: number, count: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.acknowledgedSince(sinceMs).every((acknowledged) => acknowledged >= count)) return true;
      await new Promise((resolvePause) => setTimeout(resolvePause, 50));
    }
    return false;
  }

  /** Stops the writers after their current put and waits for them. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    await Promise.all(this.running);
  }

  /** A short account of failures for a report: the first few distinct messages. */
  failureSummary(): string {
    const messages = new Map<string, number>();
    for (const record of this.writers) for (const failure of record.failures) messages.set(failure.message, (messages.get(failure.message) ?? 0) + 1);
    return [...messages].slice(0, 8).map(([message, count]) => `${count}× ${message}`).join("\n");
  }
}

/** Reads a prefix in pages (linearizable unless serializable) and returns key → value. */
export async function readPrefix(client: Etcd3, prefix: string, options: { serializable?: boolean; pageSize?: number } = {}): Promise<Map<string, string>> {
  const pageSize = options.pageSize ?? 1000;
  const found = new Map<string, string>();
  const end = `${prefix.slice(0, -1)}${String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)}`;
  let start = prefix;
  for (let page = 0; page < 10_000; page++) {
    const answer = await client.getAll().inRange({ start, end }).limit(pageSize).serializable(options.serializable ?? false)
      .options({ deadline: Date.now() + 10_000 }).exec();
    for (const kv of answer.kvs) found.set(kv.key.toString(), kv.value.toString());
    if (!answer.more || answer.kvs.length === 0) return found;
    start = `${answer.kvs[answer.kvs.length - 1].key.toString()}\0`;
  }
  throw new Error(`reading ${prefix} did not finish within 10000 pages`);
}

/** The acknowledged writes that are missing or hold another value in what was read. */
export function lostWrites(acknowledged: ReadonlyMap<string, string>, read: ReadonlyMap<string, string>): string[] {
  const lost: string[] = [];
  for (const [key, value] of acknowledged) {
    const seen = read.get(key);
    if (seen !== value) lost.push(`${key}: acknowledged "${value}", read ${seen === undefined ? "nothing" : `"${seen}"`}`);
  }
  return lost;
}
