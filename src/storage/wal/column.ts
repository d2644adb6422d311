/**
 * A growable column of numbers on a typed array. The WAL keeps a few numbers
 * per entry of every group (term, type, where it lives); as JS arrays their
 * backing stores sit on the heap, each regrowth is copied by the young
 * generation's collector and promoted, and at hundreds of thousands of
 * appends a second those copies were most of the collector's pauses. A typed
 * array's bytes live outside the heap and are never scanned.
 */
type Store = Float64Array | Uint8Array;

export class Column<T extends number = number> {
  private store: Store;
  private size = 0;

  constructor(private readonly kind: "f64" | "u8", capacity = 16) {
    this.store = this.allocate(Math.max(16, capacity));
  }

  /** A column of `count` copies of `value`. */
  static filled<T extends number>(kind: "f64" | "u8", count: number, value: T): Column<T> {
    const column = new Column<T>(kind, count);
    column.store.fill(value, 0, count);
    column.size = count;
    return column;
  }

  get length(): number {
    return this.size;
  }

  get(slot: number): T {
    return this.store[slot] as T;
  }

  set(slot: number, value: T): void {
    this.store[slot] = value;
  }

  push(value: T): void {
    if (this.size === this.store.length) this.grow(this.size + 1);
    this.store[this.size++] = value;
  }

  fill(value: T, from: number, to: number): void {
    this.store.fill(value, from, to);
  }

  /** Keeps the first `length` values. */
  truncate(length: number): void {
    if (length < this.size) this.size = length;
  }

  /** Drops the first `count` values, moving the rest to the front. */
  dropFront(count: number): void {
    this.store.copyWithin(0, count, this.size);
    this.size -= count;
  }

  private grow(needed: number): void {
    const next = this.allocate(Math.max(needed, this.store.length * 2));
    next.set(this.store.subarray(0, this.size));
    this.store = next;
  }

  private allocate(capacity: number): Store {
    return this.kind === "f64" ? new Float64Array(capacity) : new Uint8Array(capacity);
  }
}
