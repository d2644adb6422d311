/**
 * A small seeded pseudo-random number generator (xoshiro128**, seeded through
 * splitmix32). Deterministic: the same seed gives the same sequence on every
 * machine, which is what lets a simulator run be replayed from its seed.
 * Pure layers take a Prng instead of touching Math.random.
 */
export interface Prng {
  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number;
  /** An integer in [0, bound). bound must be a positive safe integer <= 2^32. */
  int(bound: number): number;
  /** An integer in [low, high], both inclusive. */
  between(low: number, high: number): number;
  /** A float in [0, 1). */
  float(): number;
  /** true with the given probability (0..1). */
  chance(probability: number): boolean;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A new generator whose sequence is independent of this one but fixed by it. */
  fork(): Prng;
}

function splitmix32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Xoshiro128 implements Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | bigint) {
    const low = Number(BigInt.asUintN(32, BigInt(seed)));
    const high = Number(BigInt.asUintN(32, BigInt(seed) >> 32n));
    const mix = splitmix32(low ^ Math.imul(high, 0x27d4eb2f));
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  int(bound: number): number {
    if (!(bound > 0 && bound <= 0x1_0000_0000 && Number.isInteger(bound))) {
      throw new RangeError(`prng bound must be an integer in (0, 2^32], got ${bound}`);
    }
    // Rejection sampling keeps the distribution exactly uniform.
    const limit = 0x1_0000_0000 - (0x1_0000_0000 % bound);
    for (;;) {
      const value = this.nextUint32();
      if (value < limit) return value % bound;
    }
  }

  between(low: number, high: number): number {
    if (high < low) throw new RangeError(`prng between(${low}, ${high}): high < low`);
    return low + this.int(high - low + 1);
  }

  float(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  chance(probability: number): boolean {
    return this.float() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("prng pick from an empty array");
    return items[this.int(items.length)];
  }

  fork(): Prng {
    return new Xoshiro128(BigInt(this.nextUint32()) << 32n | BigInt(this.nextUint32()));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function createPrng(seed: number | bigint): Prng {
  return new Xoshiro128(seed);
}
