import { describe, expect, it } from "vitest";
import { BUCKET_COUNT, LatencyHistogram, LatencyHistogramError } from "./latency-histogram.js";
import { AssertionError } from "../../src/lib/assert.js";
import { createPrng } from "../../src/lib/prng.js";

function exactQuantile(sorted: readonly number[], quantile: number): number {
  return sorted[Math.max(1, Math.ceil(quantile * sorted.length)) - 1];
}

describe("LatencyHistogram", () => {
  it("reads p50 and p99 within one percent of the exact sample quantiles", () => {
    const prng = createPrng(42);
    const samples = Array.from({ length: 5000 }, () => 50 + prng.int(200_000));
    const histogram = new LatencyHistogram();
    for (const sample of samples) histogram.record(sample);
    const sorted = [...samples].sort((left, right) => left - right);
    for (const quantile of [0.5, 0.99, 1]) {
      const exactMs = exactQuantile(sorted, quantile) / 1000;
      const readMs = histogram.quantileMs(quantile)!;
      expect(readMs).toBeGreaterThanOrEqual(exactMs);
      expect(readMs).toBeLessThanOrEqual(exactMs * 1.0101);
    }
    expect(histogram.count).toBe(5000);
  });

  it("merges into the same counts as recording both halves in one histogram", () => {
    const left = new LatencyHistogram();
    const right = new LatencyHistogram();
    const both = new LatencyHistogram();
    for (let index = 1; index <= 300; index++) {
      (index % 2 === 0 ? left : right).record(index * 37);
      both.record(index * 37);
    }
    left.merge(right);
    expect(left.toJSON()).toEqual(both.toJSON());
    expect(left.quantileMs(0.99)).toBe(both.quantileMs(0.99));
  });

  it("survives a round trip through its JSON counts, as worker reports do", () => {
    const histogram = new LatencyHistogram();
    histogram.record(1234);
    histogram.record(0.5);
    histogram.record(10 ** 12);
    const copy = new LatencyHistogram(histogram.toJSON());
    expect(copy.count).toBe(3);
    expect(copy.quantileMs(1)).toBe(histogram.quantileMs(1));
    expect(copy.quantileMs(0)).toBeCloseTo(0.001, 9);
  });

  it("answers null for an empty histogram and after a reset", () => {
    const histogram = new LatencyHistogram();
    expect(histogram.quantileMs(0.5)).toBeNull();
    histogram.record(100);
    histogram.reset();
    expect(histogram.quantileMs(0.5)).toBeNull();
    expect(histogram.count).toBe(0);
  });

  it("refuses quantiles outside [0, 1], bad bucket arrays and negative latencies", () => {
    const histogram = new LatencyHistogram();
    expect(() => histogram.quantileMs(1.5)).toThrow(LatencyHistogramError);
    expect(() => histogram.quantileMs(Number.NaN)).toThrow(LatencyHistogramError);
    expect(() => new LatencyHistogram([1, 2, 3])).toThrow(LatencyHistogramError);
    expect(() => new LatencyHistogram(new Array<number>(BUCKET_COUNT).fill(-1))).toThrow(LatencyHistogramError);
    expect(() => histogram.record(-1)).toThrow(AssertionError);
  });
});
