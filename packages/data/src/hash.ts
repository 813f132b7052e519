/**
 * Stable hashes of text for de-duplication and the train/validation split. SHA-1 (native in Node) truncated
 * to 52 bits: a plain number, so sets of hashes stay small, and with 10^7 records the chance of any collision
 * is about 10^14 / 2^53, negligible. The same text hashes the same on every machine and Node version.
 */
import { createHash } from 'node:crypto';
import { type DataRecord, type Text, textToString } from './schemas';

/** 52-bit hash of a string, as a non-negative integer. */
export function hash52(s: string): number {
  const d = createHash('sha1').update(s).digest();
  return d.readUIntBE(0, 6) * 16 + (d[6] >> 4);
}

/** A number in [0, 1) from the hash of a string; the split compares it with the validation fraction. */
export function unitHash(s: string): number {
  return hash52(s) / 2 ** 52;
}

export function promptKey(p: Text | undefined): string {
  return p === undefined ? '' : typeof p === 'string' ? `s:${p}` : `m:${textToString(p)}`;
}

/** The whole record, fields in a fixed order (so that key order in the file does not matter). */
export function recordKey(r: DataRecord): string {
  return JSON.stringify(r, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v));
}

/**
 * A set of 52-bit hashes in one Float64Array (open addressing, linear probing, load <= 1/2): 16-32 bytes
 * per entry, against some 150 for a JS Set of non-Smi numbers (measured with bench/stream.mjs). 0 marks an
 * empty slot, so the hash 0 is stored as 2^52 (outside the range of hash52).
 */
/**
 * The table slot of a key: both halves mixed, so that keys differing only in their high bits (a number
 * made from a 32-bit random value times 2^20, say) do not all fall into a few slots.
 */
function slot(key: number, mask: number): number {
  const lo = key >>> 0; // low 32 bits
  const hi = Math.floor(key / 4294967296); // the other 20
  let m = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  m ^= m >>> 15;
  m = Math.imul(m, 0xc2b2ae35);
  m ^= m >>> 13;
  return m & mask;
}

export class Hash52Set {
  private table = new Float64Array(1 << 12);
  private mask = (1 << 12) - 1;
  size = 0;

  /** Adds h; returns false when it was already there. */
  add(h: number): boolean {
    const key = h === 0 ? 2 ** 52 : h;
    if ((this.size + 1) * 2 > this.table.length) this.grow();
    let i = slot(key, this.mask);
    for (;;) {
      const v = this.table[i];
      if (v === 0) {
        this.table[i] = key;
        this.size++;
        return true;
      }
      if (v === key) return false;
      i = (i + 1) & this.mask;
    }
  }

  has(h: number): boolean {
    const key = h === 0 ? 2 ** 52 : h;
    let i = slot(key, this.mask);
    for (;;) {
      const v = this.table[i];
      if (v === 0) return false;
      if (v === key) return true;
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const old = this.table;
    this.table = new Float64Array(old.length * 2);
    this.mask = this.table.length - 1;
    this.size = 0;
    for (const v of old) if (v !== 0) this.add(v === 2 ** 52 ? 0 : v);
  }
}
