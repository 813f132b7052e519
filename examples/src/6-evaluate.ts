/**
 * Step 6, evaluation with @rlhf/eval: the reward model's accuracy on held-out rankings, the win rate of each
 * tuned policy over the SFT model judged by the reward model, and how far each moved from SFT (KL). Prints a
 * Markdown table and writes out/report.html and out/report.json.
 */
import { writeFileSync } from 'node:fs';
import { fromPretrained, loadRewardModel } from '@rlhf/core';
import { readAll, type Text } from '@rlhf/data';
import {
  createReport,
  evaluateRewardAccuracy,
  klToReference,
  metricsOf,
  reportToHtml,
  reportToJson,
  reportToMarkdown,
  rewardJudge,
  rewardModelReward,
  winRateOfModels,
  type EvalModel,
  type ResultSet,
} from '@rlhf/eval';
import { DATA, OUT } from './paths.js';

// fromPretrained's result is an EvalModel as it is: the model, its tokenizer and its stop tokens
const load = (name: string): EvalModel => fromPretrained(`${OUT}/${name}`, { requireTokenizer: true });
const sft = load('sft');
const judge = loadRewardModel(`${OUT}/rm`);

const heldOut = (await readAll(`${DATA}/comparisons-eval.jsonl`)).records;
const rmAccuracy = evaluateRewardAccuracy(judge.model, sft.tokenizer, heldOut, { normalization: judge.normalization });

const prompts = (await readAll(`${DATA}/prompts.jsonl`)).records.map((r) => (r as { prompt: Text }).prompt);
const byReward = rewardJudge(rewardModelReward(judge.model, sft.tokenizer, judge.normalization));
const results: ResultSet[] = [{ name: 'reward model', metrics: metricsOf(rmAccuracy) }];
for (const name of ['ppo', 'ppo-fn', 'dpo']) {
  const policy = load(name);
  const vsSft = await winRateOfModels(policy, sft, prompts, byReward, { maxNewTokens: 24, temperature: 0.7, seed: 1 });
  const kl = klToReference(policy, sft, prompts, { samples: 2, maxNewTokens: 24, temperature: 0.7, seed: 2 });
  results.push({ name, metrics: { 'win rate over SFT (reward-model judge)': vsSft.winRate, 'KL to SFT (nats per reply)': kl } });
}

const report = createReport('examples: SFT -> reward model -> PPO / DPO', results, [], [
  `${prompts.length} prompts, one sampled reply per model (temperature 0.7); the reward model of step 2 judges`,
  'tiny data and a few steps: the figures show the pipeline working, not what the methods can reach',
]);
console.log(reportToMarkdown(report));
writeFileSync(`${OUT}/report.html`, reportToHtml(report));
writeFileSync(`${OUT}/report.json`, reportToJson(report));
console.log(`wrote ${OUT}/report.html and ${OUT}/report.json`);
