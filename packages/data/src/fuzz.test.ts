/**
 * No input makes an adapter throw: every fixture row, mutated at random (a seeded generator replaces one
 * nested value by a value of another type), is decoded into records or problems, never an exception.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FORMATS } from './formats/index';
import { RecordSchema } from './schemas';
import { checkRecord } from './validate';
import { FIXTURES, fixture } from './test-helpers';

function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const odd = [null, 0, -1, 1.5, '', 'x', true, [], [null], {}, { role: 'user' }, [{ role: 'assistant', content: 1 }], 'https://x.example/a.json', '{"messages":3}'];

/** Paths to every nested value of v. */
function paths(v: unknown, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []) {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

function mutate(v: unknown, path: Array<string | number>, to: unknown): unknown {
  if (path.length === 0) return to;
  const copy = structuredClone(v) as Record<string | number, unknown>;
  let at = copy;
  for (const p of path.slice(0, -1)) at = at[p] as Record<string | number, unknown>;
  at[path[path.length - 1]] = to;
  return copy;
}

describe('adapters never throw', () => {
  const r = rng(2024);
  const files = readdirSync(FIXTURES).filter((f) => /\.(jsonl|ndjson)$/.test(f));
  for (const [name, fmt] of Object.entries(FORMATS)) {
    it(name, () => {
      let decoded = 0;
      let problems = 0;
      for (const file of files) {
        const rows = readFileSync(fixture(file), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
        for (const row of rows) {
          const ps = paths(row);
          for (let k = -1; k < 12; k++) {
            // k = -1: the row as it is (its own fixture's rows must decode)
            const value = k < 0 ? row : mutate(row, ps[Math.floor(r() * ps.length)], odd[Math.floor(r() * odd.length)]);
            const d = fmt.decode(value, {});
            expect(Array.isArray(d.records) && Array.isArray(d.problems)).toBe(true);
            problems += d.problems.length;
            for (const rec of d.records) {
              // whatever an adapter lets through is a valid record
              expect(RecordSchema.safeParse(rec).success).toBe(true);
              checkRecord(rec);
              if (fmt.encode) {
                try {
                  fmt.encode(rec, {});
                } catch (e) {
                  // encoders may refuse by throwing RangeError from the chat helpers; writeRecords reports those
                  expect(e).toBeInstanceOf(RangeError);
                }
              }
              decoded++;
            }
          }
        }
      }
      // some mutations are caught, and the format's own fixture rows decode
      expect(problems).toBeGreaterThan(0);
      expect(decoded).toBeGreaterThan(0);
    });
  }
});
