/**
 * Step 1, supervised fine-tuning: the base model learns from demonstrations (a prompt and the reply a person
 * wrote). Saves the fine-tuned model, with its tokenizer, to out/sft.
 */
import { LineProgress, SftTrainer, fromPretrained, generate, savePretrained, toSftExamples } from '@rlhf/core';
import { readAll } from '@rlhf/data';
import { BASE_MODEL, DATA, OUT } from './paths.js';

const base = fromPretrained(BASE_MODEL, { requireTokenizer: true });
const { model, tokenizer } = base;

// records -> token examples: prompt (with BOS) + completion (with EOS); the loss covers the completion only
const { records } = await readAll(`${DATA}/demonstrations.jsonl`);
const examples = toSftExamples(tokenizer, records);
const [heldOut, train] = [examples.slice(0, 4), examples.slice(4)];

const trainer = new SftTrainer(model, train, {
  config: {
    outputDir: `${OUT}/runs/sft`, // metrics.jsonl and checkpoints
    overwriteOutputDir: true, // the examples are rerun: replace the last run (without it a used folder is refused)
    learningRate: 2e-3,
    perDeviceTrainBatchSize: 4,
    numTrainEpochs: 2,
    evalSteps: 5,
  },
  evalData: heldOut,
  progress: new LineProgress(undefined, 5), // a line every 5 steps on stderr (trainers are silent by default)
});
const result = trainer.train(); // trains `model` in place
console.log(`sft: ${result.steps} steps, held-out completion loss ${result.lastEval.loss.toFixed(3)}`);

// the fine-tuned model continues a prompt in the demonstrations' style; it now ends replies with EOS
const prompt = tokenizer.encode('Max went to the lake.', { addBos: true });
const sample = generate(model, [prompt], { maxNewTokens: 30, temperature: 0, stopTokens: [tokenizer.eosId!], tokenizer });
console.log(`sft sample: Max went to the lake.${sample.text![0]}`);

// config.json (with eos_token_id), model.safetensors and the tokenizer: what fromPretrained loads
savePretrained(model, `${OUT}/sft`, { tokenizer });
console.log(`saved ${OUT}/sft`);
