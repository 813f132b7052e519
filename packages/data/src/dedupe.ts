/**
 * De-duplication of a record stream: exact duplicates (same record, whatever the key order), or every record
 * after the first with the same prompt (`by: 'prompt'`, e.g. to keep one demonstration per prompt). What is
 * removed is counted, not dropped silently.
 */
import { Hash52Set, hash52, promptKey, recordKey } from './hash';
import type { DataRecord } from './schemas';

export interface DedupeStats {
  seen: number;
  kept: number;
  removed: number;
}

export async function* dedupe<T extends { record: DataRecord }>(items: AsyncIterable<T>, by: 'record' | 'prompt' = 'record', stats: DedupeStats = { seen: 0, kept: 0, removed: 0 }): AsyncGenerator<T> {
  const seen = new Hash52Set();
  for await (const it of items) {
    stats.seen++;
    const r = it.record;
    const key = by === 'record' ? recordKey(r) : r.kind === 'demonstration' && r.prompt === undefined ? recordKey(r) : `${r.kind}\0${promptKey(r.prompt)}`;
    const h = hash52(key);
    if (!seen.add(h)) {
      stats.removed++;
      continue;
    }
    stats.kept++;
    yield it;
  }
}
