/**
 * Reward-model accuracy on held-out preferences (for example Anthropic HH-RLHF's test split): every ordered pair
 * of every comparison (a chosen/rejected preference is one pair; completions in one tier of a ranking are not
 * paired), scored on exactly the tokens the reward trainer scores (core's toRankedExamples, scoreCompletions).
 * Accuracy counts ties half; its interval resamples prompts, since the pairs of one ranking are not independent
 * (n = prompts). The mean margin is on the normalised scale when the model folder carries its normalisation.
 */
import { normalizeScore, scoreCompletions, toRankedExamples, type RewardModel, type ScoreNormalization, type Tokenizer } from '@rlhf/core';
import type { DataRecord } from '@rlhf/data';
import { rewardAccuracy } from '../preference';
import type { Estimate } from '../stats';

export interface RewardAccuracyResult {
  benchmark: 'reward-accuracy';
  accuracy: Estimate;
  meanMargin: Estimate;
  pairs: number;
  prompts: number;
  /** per record: its completions' scores (normalised when possible) and ranks (0 = best) */
  items: Array<{ scores: number[]; ranks: number[] }>;
}

export interface RewardAccuracyOptions {
  normalization?: ScoreNormalization;
  /** rows per forward pass (default 16) */
  batchSize?: number;
  /** tokens per sequence before trimming (default: the model's context) */
  maxLength?: number;
  /** called after each record */
  onProgress?: (done: number, total: number) => void;
}

export function evaluateRewardAccuracy(rm: RewardModel, tokenizer: Tokenizer, records: DataRecord[], opts: RewardAccuracyOptions = {}): RewardAccuracyResult {
  const examples = toRankedExamples(tokenizer, records);
  const items: RewardAccuracyResult['items'] = [];
  const chosen: number[] = [], rejected: number[] = [], groups: number[] = [];
  // records in chunks of about 64 completions, so that progress moves
  for (let r0 = 0; r0 < examples.length; ) {
    let r1 = r0, count = 0;
    while (r1 < examples.length && (count === 0 || count + examples[r1].completions.length <= 64)) count += examples[r1++].completions.length;
    const chunk = examples.slice(r0, r1);
    const raw = scoreCompletions(rm, chunk.flatMap((e) => e.completions.map((c) => ({ prompt: e.prompt, completion: c }))), opts);
    let o = 0;
    chunk.forEach((e, j) => {
      const K = e.completions.length;
      const ranks = e.ranks ?? Array.from({ length: K }, (_, i) => i); // omitted: listed best first
      const scores = Array.from(raw.subarray(o, o + K), (x) => (opts.normalization ? normalizeScore(x, opts.normalization) : x));
      o += K;
      items.push({ scores, ranks });
      for (let a = 0; a < K; a++)
        for (let b = 0; b < K; b++) {
          if (ranks[a] >= ranks[b]) continue; // a ranked above b
          chosen.push(scores[a]);
          rejected.push(scores[b]);
          groups.push(r0 + j);
        }
    });
    r0 = r1;
    opts.onProgress?.(r0, examples.length);
  }
  if (chosen.length === 0) throw new RangeError('evaluateRewardAccuracy: the records hold no ranked pair (every completion tied)');
  const { meanMargin, ...accuracy } = rewardAccuracy(chosen, rejected, groups);
  return { benchmark: 'reward-accuracy', accuracy, meanMargin, pairs: chosen.length, prompts: examples.length, items };
}
