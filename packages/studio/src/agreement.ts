/**
 * Inter-labeler agreement on items labeled by more than one person: mean Kendall's tau-b over pairs of
 * labelers for rankings and Likert ratings (ties are the norm there, hence tau-b), and the share of pairs that
 * chose the same completion for pairwise items.
 */
import { kendallTauB, tierOf } from '@rlhf/data';
import type { StudioStore } from './store';

export interface ItemAgreement {
  item: number;
  task: string;
  labelers: string[];
  /** Mean over labeler pairs; null where no pair had a defined tau (e.g. everybody tied everything). */
  value: number | null;
  measure: 'kendall-tau-b' | 'same-choice';
}

export interface AgreementSummary {
  items: ItemAgreement[];
  meanTau: number | null;
  pairwiseSameChoice: number | null;
}

export function agreement(store: StudioStore): AgreementSummary {
  const byItem = new Map<number, Array<{ labeler: string; ranks?: Map<number, number>; choice?: number }>>();
  const items = new Map(store.items().map((i) => [i.id, i]));
  for (const s of store.submissions()) {
    const item = items.get(s.itemId)!;
    const p = s.payload;
    let entry: { labeler: string; ranks?: Map<number, number>; choice?: number } | undefined;
    if (p.task === 'ranking') entry = { labeler: s.labeler, ranks: new Map(tierOf(p.ranking, item.completions.length).map((t, i) => [i, t])) };
    else if (p.task === 'likert') entry = { labeler: s.labeler, ranks: new Map(p.scores.map((x, i) => [i, -x])) };
    else if (p.task === 'pairwise') entry = { labeler: s.labeler, choice: p.choice };
    if (!entry) continue;
    const list = byItem.get(s.itemId) ?? [];
    list.push(entry);
    byItem.set(s.itemId, list);
  }
  const out: ItemAgreement[] = [];
  const taus: number[] = [];
  let same = 0;
  let pairs = 0;
  for (const [id, list] of byItem) {
    if (list.length < 2) continue;
    const task = items.get(id)!.task;
    const values: number[] = [];
    for (let a = 0; a < list.length; a++) {
      for (let b = a + 1; b < list.length; b++) {
        if (task === 'pairwise') {
          const v = list[a].choice === list[b].choice ? 1 : 0;
          values.push(v);
          same += v;
          pairs++;
        } else {
          const t = kendallTauB(list[a].ranks!, list[b].ranks!).tau;
          if (t !== null) values.push(t);
        }
      }
    }
    const value = values.length ? values.reduce((x, y) => x + y, 0) / values.length : null;
    if (task !== 'pairwise' && value !== null) taus.push(value);
    out.push({ item: id, task, labelers: list.map((e) => e.labeler), value, measure: task === 'pairwise' ? 'same-choice' : 'kendall-tau-b' });
  }
  return { items: out, meanTau: taus.length ? taus.reduce((x, y) => x + y, 0) / taus.length : null, pairwiseSameChoice: pairs ? same / pairs : null };
}
