/**
 * Step 4, PPO against a reward written in TypeScript instead of a learned reward model: any function of the
 * prompt and response token ids that returns one score per response. Here: stories about sharing, told in
 * few words. Saves the policy to out/ppo-fn.
 */
import { CausalLMWithValueHead, LineProgress, PpoTrainer, fromPretrained, savePretrained, toPrompts, type RewardFn } from '@rlhf/core';
import { readAll } from '@rlhf/data';
import { DATA, OUT } from './paths.js';

const sft = fromPretrained(`${OUT}/sft`, { requireTokenizer: true });
const { tokenizer } = sft;

/** +1 for a reply that shares or gives something, +0.5 more if it ended (EOS) within responseLength. */
const sharing: RewardFn = (_prompts, responses) =>
  responses.map((ids) => {
    const text = tokenizer.decode(ids);
    const shares = /\b(share|shared|gave|give)\b/i.test(text) ? 1 : 0;
    const ended = ids.at(-1) === tokenizer.eosId ? 0.5 : 0;
    return shares + ended;
  });

const prompts = toPrompts(tokenizer, (await readAll(`${DATA}/prompts.jsonl`)).records);
const policy = new CausalLMWithValueHead(sft.model);
const trainer = new PpoTrainer(policy, prompts.slice(4), sharing, {
  config: {
    outputDir: `${OUT}/runs/ppo-fn`,
    overwriteOutputDir: true,
    learningRate: 3e-4,
    perDeviceTrainBatchSize: 4,
    numMiniBatches: 2,
    ppoEpochs: 2,
    totalEpisodes: 32,
    responseLength: 24,
    klCoef: 0.05,
  },
  evalPrompts: prompts.slice(0, 4),
  eosTokenId: sft.stopTokens[0],
  progress: new LineProgress(undefined, 4),
});
const before = trainer.evaluate();
const result = trainer.train();
console.log(`ppo with a reward function: mean reward on held-out prompts ${before.score.toFixed(2)} -> ${result.lastEval.score.toFixed(2)}`);

savePretrained(policy.model, `${OUT}/ppo-fn`, { tokenizer });
console.log(`saved ${OUT}/ppo-fn`);
