/**
 * The payload of a command entry: the proposer's request id, then the
 * state-machine command. The id lets the node that proposed (or forwarded)
 * a command find its waiting client when the entry is applied.
 */
import { assert } from "../lib/assert.js";

export const ENVELOPE_HEADER_BYTES = 8;

export function wrapCommand(requestId: bigint, command: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(ENVELOPE_HEADER_BYTES + command.length);
  new DataView(bytes.buffer).setBigUint64(0, requestId);
  bytes.set(command, ENVELOPE_HEADER_BYTES);
  return bytes;
}

export function unwrapCommand(data: Uint8Array): { requestId: bigint; command: Uint8Array } {
  assert(data.length >= ENVELOPE_HEADER_BYTES, () => `command entry of ${data.length} bytes has no request id`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { requestId: view.getBigUint64(0), command: data.subarray(ENVELOPE_HEADER_BYTES) };
}

/**
 * Request ids unique across the cluster without coordination: the high 16
 * bits from the member id, the rest a counter seeded from the clock (as
 * etcd's idutil does), so a restarted member does not reuse recent ids.
 */
export class RequestIdGenerator {
  private next: bigint;

  constructor(memberId: bigint, nowMs: number) {
    const prefix = (memberId & 0xffffn) << 48n;
    this.next = prefix | ((BigInt(Math.floor(nowMs)) << 8n) & ((1n << 48n) - 1n));
  }

  generate(): bigint {
    const id = this.next;
    const low = (this.next + 1n) & ((1n << 48n) - 1n);
    this.next = (this.next & ~((1n << 48n) - 1n)) | low;
    return id;
  }
}
