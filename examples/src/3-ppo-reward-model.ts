/**
 * Step 3, PPO against the reward model: the SFT policy samples replies to prompts, the reward model scores
 * them, a per-token KL penalty keeps it near the SFT model (the frozen reference), and the clipped PPO
 * objective updates it. Saves the policy to out/ppo.
 */
import { CausalLMWithValueHead, LineProgress, PpoTrainer, fromPretrained, loadRewardModel, savePretrained, toPrompts } from '@rlhf/core';
import { readAll } from '@rlhf/data';
import { DATA, OUT } from './paths.js';

const sft = fromPretrained(`${OUT}/sft`, { requireTokenizer: true });
const { model: rm, normalization } = loadRewardModel(`${OUT}/rm`);

const prompts = toPrompts(sft.tokenizer, (await readAll(`${DATA}/prompts.jsonl`)).records);
// the policy and its value head share the trunk; the reference is a frozen copy of the policy as given
const policy = new CausalLMWithValueHead(sft.model);
const trainer = new PpoTrainer(policy, prompts.slice(4), { model: rm, normalization }, {
  config: {
    outputDir: `${OUT}/runs/ppo`,
    overwriteOutputDir: true,
    learningRate: 3e-4,
    perDeviceTrainBatchSize: 4, // rows per forward; a rollout is perDeviceTrainBatchSize x numMiniBatches replies
    numMiniBatches: 2,
    ppoEpochs: 2,
    totalEpisodes: 32, // replies sampled over the run
    responseLength: 24,
    klCoef: 0.05,
  },
  evalPrompts: prompts.slice(0, 4),
  eosTokenId: sft.stopTokens[0], // the SFT model ends its replies with the tokenizer's EOS (config.json's eos_token_id)
  progress: new LineProgress(undefined, 4),
});
const before = trainer.evaluate();
const result = trainer.train();
console.log(`ppo: reward-model score on held-out prompts ${before.score.toFixed(2)} -> ${result.lastEval.score.toFixed(2)}, KL to SFT ${result.lastEval.kl.toFixed(2)} nats`);

// the language model alone: the value head is training state
savePretrained(policy.model, `${OUT}/ppo`, { tokenizer: sft.tokenizer });
console.log(`saved ${OUT}/ppo`);
