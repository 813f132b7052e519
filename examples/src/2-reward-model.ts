/**
 * Step 2, the reward model: the SFT model's trunk with a scalar head, trained on rankings (for each prompt,
 * K completions ordered best to worst by people) with InstructGPT's K-wise loss. Saves it, with its score
 * normalisation and tokenizer, to out/rm: what PPO (step 3), `rlhf ppo` and `rlhf eval reward-accuracy` read.
 */
import { LineProgress, RewardModel, RewardTrainer, fromPretrained, savePretrained, toRankedExamples } from '@rlhf/core';
import { readAll } from '@rlhf/data';
import { DATA, OUT } from './paths.js';

const { model, tokenizer } = fromPretrained(`${OUT}/sft`, { requireTokenizer: true });
// a fresh load is the reward model's own copy; from a model in memory, wrap model.clone(): the head shares
// the weights of the model it is given, and training would change that model too
const rm = new RewardModel(model);

const train = toRankedExamples(tokenizer, (await readAll(`${DATA}/comparisons.jsonl`)).records);
const heldOut = toRankedExamples(tokenizer, (await readAll(`${DATA}/comparisons-eval.jsonl`)).records);

const trainer = new RewardTrainer(rm, train, {
  config: { outputDir: `${OUT}/runs/rm`, overwriteOutputDir: true, learningRate: 1e-3, perDeviceTrainBatchSize: 4, numTrainEpochs: 3 },
  evalData: heldOut,
  progress: new LineProgress(undefined, 4),
});
const result = trainer.train();
console.log(`reward model: held-out pairwise accuracy ${result.lastEval.accuracy.toFixed(2)} over ${result.lastEval.pairs} pairs`);
// raw scores are shifted and scaled to mean 0, std 1 on the reference set; PPO sees the normalised score
console.log(`score normalisation: mean ${trainer.normalization.mean.toFixed(3)}, std ${trainer.normalization.std.toFixed(3)}`);

savePretrained(rm, `${OUT}/rm`, { tokenizer, normalization: trainer.normalization });
console.log(`saved ${OUT}/rm`);
