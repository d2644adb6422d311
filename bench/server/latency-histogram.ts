/**
 * A latency histogram with logarithmic buckets, so several load-generator
 * processes can each keep one in constant memory (no per-request samples)
 * and the parent can merge them before reading percentiles. Bucket edges
 * grow by 1% from 1 µs, so a percentile is exact to within 1%, and anything
 * beyond the last edge (about a minute) lands in the last bucket.
 */
import { assert } from "../../src/lib/assert.js";

const BUCKET_GROWTH = 1.01;
const LOWEST_EDGE_MICROS = 1;
const HIGHEST_EDGE_MICROS = 60_000_000;
const LOG_GROWTH = Math.log(BUCKET_GROWTH);
export const BUCKET_COUNT = Math.ceil(Math.log(HIGHEST_EDGE_MICROS / LOWEST_EDGE_MICROS) / LOG_GROWTH) + 1;

export class LatencyHistogramError extends Error {
  override name = "LatencyHistogramError";
}

export class LatencyHistogram {
  private readonly counts: number[];
  private total = 0;

  constructor(counts?: readonly number[]) {
    if (counts !== undefined) {
      if (counts.length !== BUCKET_COUNT) {
        throw new LatencyHistogramError(`a histogram has ${BUCKET_COUNT} buckets, got ${counts.length}`);
      }
      for (const count of counts) {
        if (!Number.isSafeInteger(count) || count < 0) {
          throw new LatencyHistogramError(`bucket counts are non-negative integers, got ${count}`);
        }
      }
    }
    this.counts = counts === undefined ? new Array<number>(BUCKET_COUNT).fill(0) : [...counts];
    this.total = this.counts.reduce((sum, count) => sum + count, 0);
  }

  get count(): number {
    return this.total;
  }

  record(latencyMicros: number): void {
    assert(Number.isFinite(latencyMicros) && latencyMicros >= 0, () => `a latency is a non-negative number, got ${latencyMicros}`);
    const index = latencyMicros <= LOWEST_EDGE_MICROS
      ? 0
      : Math.min(BUCKET_COUNT - 1, Math.ceil(Math.log(latencyMicros / LOWEST_EDGE_MICROS) / LOG_GROWTH));
    this.counts[index]++;
    this.total++;
  }

  merge(other: LatencyHistogram): void {
    for (let index = 0; index < BUCKET_COUNT; index++) this.counts[index] += other.counts[index];
    this.total += other.total;
  }

  /** The upper edge of the bucket holding the q-quantile, in milliseconds; null when empty. */
  quantileMs(quantile: number): number | null {
    if (!(quantile >= 0 && quantile <= 1)) throw new LatencyHistogramError(`a quantile lies in [0, 1], got ${quantile}`);
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(quantile * this.total));
    let seen = 0;
    for (let index = 0; index < BUCKET_COUNT; index++) {
      seen += this.counts[index];
      if (seen >= rank) return (LOWEST_EDGE_MICROS * BUCKET_GROWTH ** index) / 1000;
    }
    throw new LatencyHistogramError("bucket counts do not add up to the total");
  }

  toJSON(): number[] {
    return [...this.counts];
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }
}
