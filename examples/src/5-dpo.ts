/**
 * Step 5, DPO: the offline alternative to a reward model + PPO. The SFT policy learns directly from
 * preference pairs (a chosen and a rejected reply) against a frozen copy of itself. Saves it to out/dpo.
 */
import { DpoTrainer, LineProgress, fromPretrained, savePretrained, toDpoExamples } from '@rlhf/core';
import { readAll } from '@rlhf/data';
import { DATA, OUT } from './paths.js';

// from the SFT model as saved in step 1 (not from a PPO policy: a trainer changes the model it is given)
const { model, tokenizer } = fromPretrained(`${OUT}/sft`, { requireTokenizer: true });
const pairs = toDpoExamples(tokenizer, (await readAll(`${DATA}/preferences.jsonl`)).records);

const trainer = new DpoTrainer(model, pairs.slice(3), {
  config: { outputDir: `${OUT}/runs/dpo`, overwriteOutputDir: true, learningRate: 1e-3, beta: 0.1, perDeviceTrainBatchSize: 3, numTrainEpochs: 3 },
  evalData: pairs.slice(0, 3),
  progress: new LineProgress(undefined, 3),
});
const result = trainer.train();
const e = result.lastEval;
console.log(`dpo: held-out implicit reward accuracy ${e['rewards/accuracy'].toFixed(2)}, margin ${e['rewards/margin'].toFixed(3)}`);

savePretrained(model, `${OUT}/dpo`, { tokenizer });
console.log(`saved ${OUT}/dpo`);
