/**
 * Preference and RLHF metrics, each usable over plain numbers and over models:
 *  - reward-model accuracy on held-out pairs: share of pairs where r(chosen) > r(rejected), ties half;
 *  - win rate of A over B: mean outcome (1 win, ½ tie, 0 loss) as judged by a reward model or any judge
 *    function, with a normal-approximation 95% interval on that mean;
 *  - KL(policy ‖ reference) on a prompt set: completions sampled from the policy, KL estimated per sequence
 *    by the sum over its tokens of log π(t) − log π_ref(t) (the k1 estimator; unbiased, can be negative for
 *    one sample), averaged over samples;
 *  - the reward over-optimisation curve (Gao et al. 2022): proxy reward and gold reward against KL, over a
 *    set of checkpoints (or any points), so that the gold curve's turn-down is visible.
 */
import {
  encodePrompt,
  encodePromptCompletion,
  generate,
  rewardModelScores,
  tidy,
  type RewardModel,
  type ScoreNormalization,
  type Tokenizer,
} from '@rlhf/core';
import type { Text } from '@rlhf/data';
import type { EvalModel } from './benchmarks/common';
import { scoreContinuations } from './loglik';
import type { Series } from './report';
import { clusteredRatio, meanEstimate, proportion, type Estimate } from './stats';

/**
 * Accuracy of a reward model from its scores of chosen and rejected completions (pairs aligned). `groups` (one
 * key per pair, e.g. the prompt a ranking's pairs came from) makes the interval a bootstrap over groups, since
 * the pairs of one ranking are not independent; without it, a Wilson interval over pairs.
 */
export function rewardAccuracy(
  chosen: ArrayLike<number>,
  rejected: ArrayLike<number>,
  groups?: ArrayLike<number | string>,
): Estimate & { meanMargin: Estimate } {
  if (chosen.length !== rejected.length) throw new RangeError(`rewardAccuracy: ${chosen.length} chosen scores, ${rejected.length} rejected`);
  if (groups && groups.length !== chosen.length) throw new RangeError(`rewardAccuracy: ${groups.length} group keys for ${chosen.length} pairs`);
  let wins = 0;
  const margins: number[] = [];
  const byGroup = new Map<number | string, { wins: number; pairs: number }>();
  for (let i = 0; i < chosen.length; i++) {
    if (!Number.isFinite(chosen[i]) || !Number.isFinite(rejected[i])) throw new RangeError(`rewardAccuracy: pair ${i} has a non-finite score`);
    const w = chosen[i] > rejected[i] ? 1 : chosen[i] === rejected[i] ? 0.5 : 0;
    wins += w;
    margins.push(chosen[i] - rejected[i]);
    if (groups) {
      const g = byGroup.get(groups[i]) ?? { wins: 0, pairs: 0 };
      g.wins += w;
      g.pairs++;
      byGroup.set(groups[i], g);
    }
  }
  if (!groups) return { ...proportion(wins, chosen.length), meanMargin: meanEstimate(margins) };
  const g = [...byGroup.values()];
  return { ...clusteredRatio(g.map((x) => x.wins), g.map((x) => x.pairs)), meanMargin: meanEstimate(margins) };
}

/** Outcome of one comparison from A's point of view: 1 win, 0.5 tie, 0 loss. */
export type Outcome = 0 | 0.5 | 1;

export interface WinRate extends Estimate {
  wins: number;
  ties: number;
  losses: number;
}

/** Win rate from outcomes (1 / 0.5 / 0), ties counting half; a normal interval on the mean outcome, clipped to [0, 1]. */
export function winRate(outcomes: ArrayLike<number>): WinRate {
  let wins = 0, ties = 0, losses = 0;
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i];
    if (o === 1) wins++;
    else if (o === 0.5) ties++;
    else if (o === 0) losses++;
    else throw new RangeError(`winRate: outcome ${i} = ${o}; expected 1 (win), 0.5 (tie) or 0 (loss)`);
  }
  const e = meanEstimate(outcomes);
  // A rate lies in [0, 1]: the normal interval, which can reach past it for a few comparisons
  // (n = 2: 0.500 [-0.480, 1.480]), is clipped there.
  const ci: [number, number] = [Math.max(0, e.ci[0]), Math.min(1, e.ci[1])];
  return { ...e, ci, wins, ties, losses };
}

/** Outcomes of A against B from their rewards on the same prompts (equal rewards tie). */
export function outcomesFromRewards(rewardsA: ArrayLike<number>, rewardsB: ArrayLike<number>): Outcome[] {
  if (rewardsA.length !== rewardsB.length) throw new RangeError(`outcomesFromRewards: ${rewardsA.length} rewards for A, ${rewardsB.length} for B`);
  return Array.from({ length: rewardsA.length }, (_, i) => (rewardsA[i] > rewardsB[i] ? 1 : rewardsA[i] < rewardsB[i] ? 0 : 0.5));
}

/** A judge says how A's completion compares with B's for a prompt (text or chat messages): 1, 0.5 or 0 (may be async). */
export type Judge = (prompt: Text, completionA: string, completionB: string) => number | Promise<number>;

/** A judge from a reward function: the higher reward wins. */
export function rewardJudge(reward: (prompt: Text, completion: string) => number | Promise<number>): Judge {
  return async (p, a, b) => {
    const [ra, rb] = [await reward(p, a), await reward(p, b)];
    return ra > rb ? 1 : ra < rb ? 0 : 0.5;
  };
}

/**
 * A reward function from a core RewardModel: its scalar at the last token, on exactly the token sequence the
 * reward trainer and PPO score (core's `encodePromptCompletion`: the prompt with BOS, then the completion
 * encoded on its own and ended with EOS), scored by core's `rewardModelScores` as the trainers and the demo score
 * (`collateCompletions` trims to the model's context), and normalised (mean 0, std 1 on the reference set) when
 * the model folder carried a normalisation.
 */
export function rewardModelReward(
  rm: RewardModel,
  tokenizer: Tokenizer,
  normalization?: ScoreNormalization,
): (prompt: Text, completion: string) => number {
  return (prompt, completion) => {
    const pair = encodePromptCompletion(tokenizer, prompt, completion);
    // core's one way a reward model scores a completion (the trainers' and the demo's)
    return tidy(() => rewardModelScores({ model: rm, normalization }, [pair.prompt], [pair.completion], 1)[0]);
  };
}

export interface CompletionOptions {
  maxNewTokens?: number;
  /** 0 = greedy (default 1) */
  temperature?: number;
  topP?: number;
  seed?: number;
}

/**
 * One completion per prompt (text after the prompt), seeded. A prompt is text (encoded with BOS) or chat
 * messages (the tokenizer's chat template with the generation prompt), as the trainers encode prompts.
 */
export function complete(m: EvalModel, prompts: Text[], opts: CompletionOptions = {}): { text: string[]; ids: number[][]; promptIds: number[][] } {
  const maxNew = opts.maxNewTokens ?? 32;
  if (!(Number.isInteger(maxNew) && maxNew >= 0 && maxNew < m.model.maxPositions)) {
    throw new RangeError(`complete: maxNewTokens must be an integer in [0, ${m.model.maxPositions - 1}] (the model's window is ${m.model.maxPositions} positions and the prompt needs at least one), got ${opts.maxNewTokens}`);
  }
  const text: string[] = [], ids: number[][] = [], promptIds: number[][] = [];
  prompts.forEach((p, i) => {
    let pid = encodePrompt(m.tokenizer, p);
    const room = m.model.maxPositions - maxNew;
    if (pid.length > room) pid = [pid[0], ...pid.slice(pid.length - room + 1)];
    const stops = m.stopTokens ?? (m.tokenizer.eosId !== undefined ? [m.tokenizer.eosId] : []);
    const r = generate(m.model, [pid], { maxNewTokens: maxNew, temperature: opts.temperature ?? 1, topP: opts.topP ?? 1, seed: (opts.seed ?? 0) * 1_000_003 + i, stopTokens: stops, tokenizer: m.tokenizer });
    text.push(r.text?.[0] ?? '');
    ids.push(r.tokens[0]);
    promptIds.push(pid);
  });
  return { text, ids, promptIds };
}

/** Win rate of model A over model B on prompts, each completing every prompt once, judged by `judge`. */
export async function winRateOfModels(a: EvalModel, b: EvalModel, prompts: Text[], judge: Judge, opts: CompletionOptions = {}) {
  const ca = complete(a, prompts, opts).text;
  const cb = complete(b, prompts, { ...opts, seed: (opts.seed ?? 0) + 1 });
  const outcomes: number[] = [];
  for (let i = 0; i < prompts.length; i++) outcomes.push(await judge(prompts[i], ca[i], cb.text[i]));
  return { winRate: winRate(outcomes), completionsA: ca, completionsB: cb.text, outcomes };
}

/** KL estimate from per-sequence log-likelihoods under the policy and the reference (samples from the policy). */
export function klFromLogprobs(policyLogliks: ArrayLike<number>, referenceLogliks: ArrayLike<number>): Estimate {
  if (policyLogliks.length !== referenceLogliks.length) throw new RangeError(`klFromLogprobs: ${policyLogliks.length} policy values, ${referenceLogliks.length} reference values`);
  return meanEstimate(Array.from({ length: policyLogliks.length }, (_, i) => policyLogliks[i] - referenceLogliks[i]));
}

/**
 * KL(policy ‖ reference) in nats per sequence on a prompt set: `samples` completions per prompt sampled
 * from the policy, each scored under both models. At `temperature` τ (default 1) both models' logits are
 * divided by τ, for sampling and for scoring: KL(policy_τ ‖ reference_τ), the quantity a PPO trainer that
 * samples at τ measures and penalises (TRL's convention). τ = 1 is the models' own distributions.
 */
export function klToReference(policy: EvalModel, reference: EvalModel, prompts: Text[], opts: { samples?: number; maxNewTokens?: number; seed?: number; temperature?: number } = {}) {
  const n = opts.samples ?? 1;
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new RangeError(`klToReference: temperature must be a positive finite number (greedy decoding has no KL), got ${temperature}`);
  const pol: number[] = [], ref: number[] = [];
  for (let s = 0; s < n; s++) {
    const c = complete(policy, prompts, { maxNewTokens: opts.maxNewTokens, temperature, seed: (opts.seed ?? 0) + s * 7919 });
    c.ids.forEach((cont, i) => {
      if (!cont.length) return;
      pol.push(scoreContinuations(policy.model, c.promptIds[i], [cont], { temperature }).logliks[0]);
      ref.push(scoreContinuations(reference.model, c.promptIds[i], [cont], { temperature }).logliks[0]);
    });
  }
  return klFromLogprobs(pol, ref);
}

export interface OveroptimisationPoint {
  /** a checkpoint's name or step */
  label: string;
  kl: Estimate;
  proxy: Estimate;
  gold?: Estimate;
}

/**
 * The over-optimisation curve from per-checkpoint samples: for each checkpoint its KL values and the proxy
 * (and, when there is one, gold) rewards of its completions. Points are sorted by mean KL. `peakGold` is the
 * checkpoint where the gold reward is highest: past it, proxy reward still rises while gold falls.
 */
export function overoptimisationCurve(checkpoints: Array<{ label: string; kl: ArrayLike<number>; proxy: ArrayLike<number>; gold?: ArrayLike<number> }>) {
  const points: OveroptimisationPoint[] = checkpoints.map((c) => ({
    label: c.label,
    kl: meanEstimate(c.kl),
    proxy: meanEstimate(c.proxy),
    ...(c.gold ? { gold: meanEstimate(c.gold) } : {}),
  }));
  points.sort((x, y) => x.kl.value - y.kl.value);
  let peakGold: string | undefined;
  let best = -Infinity;
  for (const p of points) if (p.gold && p.gold.value > best) { best = p.gold.value; peakGold = p.label; }
  return { points, peakGold };
}

/** The curve as a report Series: proxy and gold reward (with their intervals as bands) against mean KL. */
export function overoptimisationSeries(curve: { points: OveroptimisationPoint[] }, name = 'reward over-optimisation'): Series {
  const line = (pick: (p: OveroptimisationPoint) => Estimate | undefined) =>
    curve.points.flatMap((p) => {
      const e = pick(p);
      return e ? [{ x: p.kl.value, y: e.value, lo: e.ci[0], hi: e.ci[1], label: p.label }] : [];
    });
  const lines = [{ name: 'proxy reward', points: line((p) => p.proxy) }];
  if (curve.points.some((p) => p.gold)) lines.push({ name: 'gold reward', points: line((p) => p.gold) });
  return { name, xLabel: 'KL(policy ‖ reference), nats', yLabel: 'reward', lines };
}
