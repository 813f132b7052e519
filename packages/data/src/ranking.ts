/**
 * Rankings to pairs, the InstructGPT way (Ouyang et al. 2022, section 3.5): a ranking of K completions gives
 * all C(K,2) (better, worse) pairs, and the pairs of one prompt stay together as one batch element, so that the
 * reward model scores each completion once and the K-wise loss averages over the prompt's pairs (training on
 * the pairs as independent examples overfits: each completion would appear K-1 times in an epoch).
 * Completions in the same tier (a tie) give no pair.
 */
import type { Comparison, Preference, Text } from './schemas';

/** The pairs of one prompt: `pairs[i] = [better, worse]`, indices into `completions`. */
export interface PairGroup {
  id?: string;
  prompt: Text;
  completions: Text[];
  pairs: Array<[better: number, worse: number]>;
  labeler?: string;
}

/**
 * Says what is wrong with a ranking of k completions, or undefined when it is a valid list of tiers whose
 * flattening is a permutation of 0..k-1.
 */
export function rankingProblem(ranking: number[][], k: number): string | undefined {
  if (k < 2) return `K = ${k}: a comparison needs at least 2 completions`;
  const seen = new Uint8Array(k);
  let n = 0;
  for (let t = 0; t < ranking.length; t++) {
    const tier = ranking[t];
    if (tier.length === 0) return `tier ${t} is empty`;
    for (const i of tier) {
      if (!Number.isInteger(i) || i < 0 || i >= k) return `index ${i} in tier ${t} is outside 0..${k - 1}`;
      if (seen[i]) return `completion ${i} appears twice`;
      seen[i] = 1;
      n++;
    }
  }
  if (n !== k) {
    const missing: number[] = [];
    for (let i = 0; i < k; i++) if (!seen[i]) missing.push(i);
    return `not a permutation of 0..${k - 1}: missing ${missing.join(', ')}`;
  }
  return undefined;
}

/**
 * All (better, worse) pairs of a ranking given as tiers, best tier first. Throws on an invalid ranking (call
 * `rankingProblem` first to report instead).
 */
export function rankingPairs(ranking: number[][], k: number): Array<[number, number]> {
  const problem = rankingProblem(ranking, k);
  if (problem) throw new RangeError(`invalid ranking: ${problem}`);
  const pairs: Array<[number, number]> = [];
  for (let a = 0; a < ranking.length; a++) {
    for (let b = a + 1; b < ranking.length; b++) {
      for (const better of ranking[a]) for (const worse of ranking[b]) pairs.push([better, worse]);
    }
  }
  return pairs;
}

/** A comparison's C(K,2) pairs (fewer with ties), grouped as one element. */
export function rankingToPairs(c: Comparison): PairGroup {
  const group: PairGroup = { prompt: c.prompt, completions: c.completions, pairs: rankingPairs(c.ranking, c.completions.length) };
  if (c.id !== undefined) group.id = c.id;
  if (c.labeler !== undefined) group.labeler = c.labeler;
  return group;
}

/** The group's pairs as flat preference records (for pairwise trainers and the pairwise file formats). */
export function pairGroupToPreferences(g: PairGroup): Preference[] {
  return g.pairs.map(([better, worse], i) => {
    const p: Preference = { kind: 'preference', prompt: g.prompt, chosen: g.completions[better], rejected: g.completions[worse] };
    if (g.id !== undefined) p.id = `${g.id}#${i}`;
    return p;
  });
}

/** A preference as a comparison of two (chosen ranked first). */
export function preferenceToComparison(p: Preference): Comparison {
  const c: Comparison = { kind: 'comparison', prompt: p.prompt, completions: [p.chosen, p.rejected], ranking: [[0], [1]] };
  if (p.id !== undefined) c.id = p.id;
  return c;
}

/** Ranks per completion (0 = best tier) from tiers: the inverse view, used by agreement statistics. */
export function tierOf(ranking: number[][], k: number): number[] {
  const rank = new Array<number>(k).fill(-1);
  ranking.forEach((tier, t) => {
    for (const i of tier) rank[i] = t;
  });
  return rank;
}

/**
 * Ties in a ranking given as a rank per completion (lower is better, equal is a tie), e.g. from Likert
 * scores or an export's `order` field, to tiers.
 */
export function tiersFromRanks(ranks: number[]): number[][] {
  const byRank = new Map<number, number[]>();
  ranks.forEach((r, i) => {
    const tier = byRank.get(r);
    if (tier) tier.push(i);
    else byRank.set(r, [i]);
  });
  return [...byRank.entries()].sort((a, b) => a[0] - b[0]).map(([, tier]) => tier);
}

/**
 * The pair group of any pairwise-capable record: a comparison's C(K,2) pairs, or a preference's single
 * pair (completions [chosen, rejected], pair [0, 1]); undefined for other kinds.
 */
export function toPairGroup(r: Comparison | Preference | { kind: string }): PairGroup | undefined {
  if (r.kind === 'comparison') return rankingToPairs(r as Comparison);
  if (r.kind !== 'preference') return undefined;
  const p = r as Preference;
  const g: PairGroup = { prompt: p.prompt, completions: [p.chosen, p.rejected], pairs: [[0, 1]] };
  if (p.id !== undefined) g.id = p.id;
  return g;
}
