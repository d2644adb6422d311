/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum the WAL,
 * snapshots and frames use. Slicing-by-8 tables: about 8x faster than the
 * byte-at-a-time loop, which matters on the WAL's write path.
 */
const POLYNOMIAL = 0x82f63b78;
const TABLES: Uint32Array[] = buildTables();

function buildTables(): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const first = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLYNOMIAL : c >>> 1;
    first[n] = c >>> 0;
  }
  tables.push(first);
  for (let t = 1; t < 8; t++) {
    const table = new Uint32Array(256);
    const previous = tables[t - 1];
    for (let n = 0; n < 256; n++) table[n] = (first[previous[n] & 0xff] ^ (previous[n] >>> 8)) >>> 0;
    tables.push(table);
  }
  return tables;
}

/** Extends a running CRC32C (start with 0) over bytes[start, end). */
export function crc32c(bytes: Uint8Array, initial = 0, start = 0, end = bytes.length): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  let crc = ~initial >>> 0;
  let i = start;
  while (end - i >= 8) {
    const low = (crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24))) >>> 0;
    crc =
      t7[low & 0xff] ^ t6[(low >>> 8) & 0xff] ^ t5[(low >>> 16) & 0xff] ^ t4[low >>> 24] ^
      t3[bytes[i + 4]] ^ t2[bytes[i + 5]] ^ t1[bytes[i + 6]] ^ t0[bytes[i + 7]];
    i += 8;
  }
  while (i < end) {
    crc = t0[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
    i++;
  }
  return ~crc >>> 0;
}
