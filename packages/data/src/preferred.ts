/**
 * Preferences and comparisons as demonstrations of their preferred completion: what supervised fine-tuning
 * on preference data trains on (Rafailov et al. 2023, DPO: the "Preferred-FT" baseline, and how they made an
 * SFT model for Anthropic HH, which has none). A preference gives its `chosen`; a comparison its labeler's `rewrite`
 * when it has one (a completion written to be better than all K), else the first completion of its best tier.
 * Other kinds pass unchanged. The id and meta carry over; the demonstration records where it came from in
 * `meta.preferredFrom` (`chosen`, `rewrite` or `rank-1`).
 */
import type { DataRecord, Demonstration } from './schemas';

export function preferredDemonstration(r: DataRecord): DataRecord {
  if (r.kind !== 'preference' && r.kind !== 'comparison') return r;
  let completion: Demonstration['completion'];
  let from: string;
  if (r.kind === 'preference') {
    completion = r.chosen;
    from = 'chosen';
  } else if (r.rewrite !== undefined) {
    completion = r.rewrite;
    from = 'rewrite';
  } else {
    const best = r.ranking[0]?.[0];
    if (best === undefined || r.completions[best] === undefined) {
      throw new RangeError(`preferredDemonstration: comparison${r.id ? ` ${r.id}` : ''} has no best-ranked completion (ranking ${JSON.stringify(r.ranking)} over ${r.completions.length} completions)`);
    }
    completion = r.completions[best];
    from = 'rank-1';
  }
  return {
    kind: 'demonstration',
    ...(r.id !== undefined ? { id: r.id } : {}),
    prompt: r.prompt,
    completion,
    meta: { ...(r.meta ?? {}), preferredFrom: from },
  };
}

/** `preferredDemonstration` over a stream of sourced records. */
export async function* preferredDemonstrations<T extends { record: DataRecord }>(items: AsyncIterable<T>): AsyncGenerator<T> {
  for await (const it of items) yield { ...it, record: preferredDemonstration(it.record) };
}
