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
