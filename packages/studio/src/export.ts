/**
 * Submissions as @rlhf/data records: demonstrations (for `rlhf sft`), comparisons with rankings and pairwise
 * preferences (for `rlhf rm` / DPO), prompts (for PPO rollouts). One record per submission, so an item labeled
 * by three people gives three records, each naming its labeler; agreement is computed separately.
 */
import { type Comparison, type DataRecord, type Demonstration, type Preference, type PromptOnly, type Text, Report, openSink, pairGroupToPreferences, rankingToPairs, tiersFromRanks, writeRecords } from '@rlhf/data';
import type { Item, StoredSubmission, StudioStore } from './store';

export const EXPORT_KINDS = ['demonstrations', 'comparisons', 'preferences', 'prompts'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

function meta(item: Item, s: StoredSubmission): Record<string, unknown> {
  return { item: item.id, task: item.task, labeler: s.labeler, labeledAt: s.createdAt };
}

/** The comparison a ranking, pairwise or Likert submission states; undefined for the other tasks. */
function comparisonOf(item: Item, s: StoredSubmission): Comparison | undefined {
  const p = s.payload;
  const base = { kind: 'comparison' as const, id: `item-${item.id}-${s.labeler}`, prompt: item.prompt as Text, completions: item.completions, labeler: s.labeler, meta: meta(item, s) };
  if (p.task === 'ranking') return { ...base, ranking: p.ranking };
  if (p.task === 'pairwise') return { ...base, ranking: [[p.choice], [1 - p.choice]], reason: p.reason };
  if (p.task === 'likert') {
    // Higher score = better; equal scores are a tie. tiersFromRanks takes 0-best ranks.
    return { ...base, ranking: tiersFromRanks(p.scores.map((x) => 7 - x)), likert: p.scores };
  }
  return undefined;
}

/** The records of one kind, in item order. */
export function exportRecords(store: StudioStore, kind: ExportKind): DataRecord[] {
  const items = new Map(store.items().map((i) => [i.id, i]));
  const out: DataRecord[] = [];
  for (const s of store.submissions()) {
    const item = items.get(s.itemId)!;
    const p = s.payload;
    if (kind === 'demonstrations') {
      let d: Demonstration | undefined;
      if (p.task === 'prompt_response') d = { kind: 'demonstration', prompt: p.prompt, completion: p.response };
      else if (p.task === 'response') d = { kind: 'demonstration', prompt: item.prompt as Text, completion: p.response };
      else if (p.task === 'rewrite') d = { kind: 'demonstration', prompt: item.prompt as Text, completion: p.rewrite };
      if (d) out.push({ ...d, id: `item-${item.id}-${s.labeler}`, meta: meta(item, s) });
    } else if (kind === 'prompts') {
      let q: PromptOnly | undefined;
      if (p.task === 'prompt') q = { kind: 'prompt', prompt: p.prompt };
      else if (p.task === 'prompt_response') q = { kind: 'prompt', prompt: p.prompt };
      if (q) out.push({ ...q, id: `item-${item.id}-${s.labeler}`, meta: meta(item, s) });
    } else {
      const c = comparisonOf(item, s);
      if (!c) continue;
      if (kind === 'comparisons') out.push(c);
      else {
        const prefs: Preference[] = pairGroupToPreferences(rankingToPairs(c));
        for (const pr of prefs) out.push({ ...pr, meta: meta(item, s) });
      }
    }
  }
  return out;
}

/**
 * Writes one kind to a file in any container @rlhf/data writes (.jsonl, .jsonl.gz, .json, .parquet). With
 * `format` (an @rlhf/data format name such as `trl-preference`) each record is encoded in that layout, as
 * `rlhf data convert --to` does; without it, records are written as they are (JSON containers only: Parquet
 * holds flat columns, so it needs a flat format). Records the format cannot take are counted, not written.
 */
export async function exportToFile(store: StudioStore, kind: ExportKind, path: string, format?: string): Promise<{ written: number; skipped: number }> {
  const records = exportRecords(store, kind);
  const sink = openSink(path);
  try {
    if (format === undefined) {
      for (const r of records) await sink.write(r);
      return { written: await sink.close(), skipped: 0 };
    }
    const report = new Report(path, format);
    report.kept = records.length;
    await writeRecords((async function* () { for (const record of records) yield { record }; })(), sink, format, report);
    return { written: await sink.close(), skipped: report.dropped };
  } catch (err) {
    await sink.abort();
    throw err;
  }
}
