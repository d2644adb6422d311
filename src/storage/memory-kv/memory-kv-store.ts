/**
 * The in-memory KvStore for the simulator and tests: each table is a
 * persistent (path-copying) treap, so a read view is just the roots taken at
 * its start, a write transaction builds new roots and commits by swapping
 * them in, and an exception inside a write leaves nothing behind. Treap
 * priorities are a hash of the key, so the shape is deterministic.
 */
import { crc32c } from "../../lib/crc32c.js";
import { compareBytes } from "../../kv/encoding.js";
import { KV_TABLES, type KvEntry, type KvRangeOptions, type KvReader, type KvStore, type KvTable, type KvWriter } from "../../kv/store.js";

interface TreapNode {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  readonly priority: number;
  readonly left: TreapNode | null;
  readonly right: TreapNode | null;
}

function node(key: Uint8Array, value: Uint8Array, priority: number, left: TreapNode | null, right: TreapNode | null): TreapNode {
  return { key, value, priority, left, right };
}

function insert(root: TreapNode | null, key: Uint8Array, value: Uint8Array, priority: number): TreapNode {
  if (root === null) return node(key, value, priority, null, null);
  const order = compareBytes(key, root.key);
  if (order === 0) return node(root.key, value, root.priority, root.left, root.right);
  if (order < 0) {
    const left = insert(root.left, key, value, priority);
    if (left.priority > root.priority) return node(left.key, left.value, left.priority, left.left, node(root.key, root.value, root.priority, left.right, root.right));
    return node(root.key, root.value, root.priority, left, root.right);
  }
  const right = insert(root.right, key, value, priority);
  if (right.priority > root.priority) return node(right.key, right.value, right.priority, node(root.key, root.value, root.priority, root.left, right.left), right.right);
  return node(root.key, root.value, root.priority, root.left, right);
}

function merge(left: TreapNode | null, right: TreapNode | null): TreapNode | null {
  if (left === null) return right;
  if (right === null) return left;
  if (left.priority > right.priority) return node(left.key, left.value, left.priority, left.left, merge(left.right, right));
  return node(right.key, right.value, right.priority, merge(left, right.left), right.right);
}

function remove(root: TreapNode | null, key: Uint8Array): TreapNode | null {
  if (root === null) return null;
  const order = compareBytes(key, root.key);
  if (order === 0) return merge(root.left, root.right);
  if (order < 0) {
    const left = remove(root.left, key);
    return left === root.left ? root : node(root.key, root.value, root.priority, left, root.right);
  }
  const right = remove(root.right, key);
  return right === root.right ? root : node(root.key, root.value, root.priority, root.left, right);
}

function find(root: TreapNode | null, key: Uint8Array): Uint8Array | undefined {
  let current = root;
  while (current !== null) {
    const order = compareBytes(key, current.key);
    if (order === 0) return current.value;
    current = order < 0 ? current.left : current.right;
  }
  return undefined;
}

function* walk(root: TreapNode | null, options: KvRangeOptions): Generator<KvEntry> {
  const { start, end } = options;
  const stack: TreapNode[] = [];
  if (!options.reverse) {
    const pushLeft = (from: TreapNode | null): void => {
      let current = from;
      while (current !== null) {
        if (start === undefined || compareBytes(current.key, start) >= 0) {
          stack.push(current);
          current = current.left;
        } else current = current.right;
      }
    };
    pushLeft(root);
    while (stack.length > 0) {
      const current = stack.pop() as TreapNode;
      if (end !== undefined && compareBytes(current.key, end) >= 0) return;
      yield { key: current.key, value: current.value };
      pushLeft(current.right);
    }
    return;
  }
  const pushRight = (from: TreapNode | null): void => {
    let current = from;
    while (current !== null) {
      if (end === undefined || compareBytes(current.key, end) < 0) {
        stack.push(current);
        current = current.right;
      } else current = current.left;
    }
  };
  pushRight(root);
  while (stack.length > 0) {
    const current = stack.pop() as TreapNode;
    if (start !== undefined && compareBytes(current.key, start) < 0) return;
    yield { key: current.key, value: current.value };
    pushRight(current.left);
  }
}

type Roots = (TreapNode | null)[];

function readerOf(roots: Roots): KvReader {
  return {
    get: (table, key) => find(roots[table], key),
    range: (table, options = {}) => walk(roots[table], options),
  };
}

export class MemoryKvStore implements KvStore {
  readonly location = "memory";
  private roots: Roots = KV_TABLES.map(() => null);
  private writing = false;

  read<T>(fn: (reader: KvReader) => T): T {
    return fn(readerOf(this.roots));
  }

  write<T>(fn: (writer: KvWriter) => T): T {
    if (this.writing) throw new Error("memory kv store: nested write transaction");
    this.writing = true;
    try {
      const working: Roots = this.roots.slice();
      const reader = readerOf(working);
      const writer: KvWriter = {
        get: reader.get,
        range: reader.range,
        // Copies: the caller may reuse its buffers after the call, as with LMDB.
        put: (table: KvTable, key: Uint8Array, value: Uint8Array) => {
          const ownKey = key.slice();
          working[table] = insert(working[table], ownKey, value.slice(), crc32c(ownKey));
        },
        delete: (table: KvTable, key: Uint8Array) => {
          working[table] = remove(working[table], key);
        },
      };
      const result = fn(writer);
      this.roots = working;
      return result;
    } finally {
      this.writing = false;
    }
  }

  /** Replaces the whole content with another store's, in one step (snapshot install). */
  replaceWith(other: MemoryKvStore): void {
    if (this.writing) throw new Error("memory kv store: replace during a write transaction");
    this.roots = other.roots.slice();
  }

  /** Writes are durable the moment they commit: there is no disk. */
  flushed(): Promise<void> {
    return Promise.resolve();
  }
}
