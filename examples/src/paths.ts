/**
 * Where the examples read and write. Each step saves a model folder that the next one loads, so they run in
 * order: 1-sft, 2-reward-model, 3-ppo-reward-model, 4-ppo-reward-function, 5-dpo, 6-evaluate.
 */
import { fileURLToPath } from 'node:url';
import { sharedPath } from '@rlhf/data';

/**
 * The model every run starts from: $RLHF_BASE_MODEL (a Hugging Face GPT-2 or Llama folder, or a llama2.c .bin
 * with its tok*.bin beside it), else the tiny pretrained stories260K of this repository's shared folder.
 */
export const BASE_MODEL = process.env.RLHF_BASE_MODEL ?? sharedPath('models/stories260K/stories260K.bin');

/** The records the examples train on (@rlhf/data's JSONL format). */
export const DATA = fileURLToPath(new URL('../data', import.meta.url));

/** Models (sft/, rm/, ppo/, ...) and training runs (runs/) go here: $RLHF_EXAMPLES_OUT, else examples/out. */
export const OUT = process.env.RLHF_EXAMPLES_OUT ?? fileURLToPath(new URL('../out', import.meta.url));
