/**
 * fromPretrained: a model (and its tokenizer, when one is found) from
 *  - a Hugging Face folder: config.json (model_type gpt2 or llama) + model.safetensors (or shards), or
 *  - a llama2.c checkpoint `.bin` (+ a `tok*.bin` / `tokenizer.bin` beside it, or the one given).
 * The readers are io/ (safetensors, llama2.c) and tokenizers/ (loadTokenizer: tok*.bin, tokenizer.json).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadHfCheckpoint, saveHfCheckpoint } from '../io/hf-checkpoint';
import { readLlama2cCheckpoint } from '../io/llama2c';
import { loadTokenizer } from '../tokenizers/load-tokenizer';
import type { Tokenizer } from '../tokenizers/types';
import type { CausalLM } from './common';
import { GPT2, gpt2ConfigFromHf } from './gpt2';
import { Llama, llamaConfigFromHf } from './llama';

export interface Pretrained {
  model: CausalLM;
  tokenizer?: Tokenizer;
  /** 'hf' folder or 'llama2c' file */
  format: 'hf' | 'llama2c';
  /** token ids generation should stop at by default (llama2.c models stop at BOS, HF ones at EOS) */
  stopTokens: number[];
  /** id to start an empty prompt with, when the model has one */
  bosId?: number;
}

export interface FromPretrainedOptions {
  /** a tokenizer file to use instead of the one found beside the weights */
  tokenizer?: string | Tokenizer;
}

/** Loads a tokenizer file or folder (llama2.c tok*.bin, tokenizer.json): tokenizers/'s loadTokenizer. */
export function loadTokenizerFile(path: string): Tokenizer {
  if (!existsSync(path)) throw new Error(`tokenizer ${path} does not exist`);
  return loadTokenizer(path);
}

export function fromPretrained(path: string, opts: FromPretrainedOptions = {}): Pretrained {
  if (!existsSync(path)) throw new Error(`fromPretrained: ${path} does not exist`);
  const given = typeof opts.tokenizer === 'string' ? loadTokenizerFile(opts.tokenizer) : opts.tokenizer;
  if (statSync(path).isFile() && path.endsWith('.bin')) {
    const ck = readLlama2cCheckpoint(path);
    const c = ck.config;
    const model = new Llama({
      vocabSize: c.vocabSize,
      hiddenSize: c.dim,
      intermediateSize: c.hiddenDim,
      numLayers: c.nLayers,
      numHeads: c.nHeads,
      numKvHeads: c.nKvHeads,
      maxPositions: c.seqLen,
      rmsNormEps: c.rmsNormEps,
      ropeTheta: c.ropeTheta,
      ropeInterleaved: c.ropeInterleaved,
      tieWordEmbeddings: c.sharedClassifier,
    });
    model.loadStateDict(ck.tensors);
    let tokenizer = given;
    if (!tokenizer) {
      const dir = dirname(path);
      const found = readdirSync(dir).filter((f) => /^tok.*\.bin$|^tokenizer\.bin$/.test(f));
      if (found.length === 1) tokenizer = loadTokenizer(join(dir, found[0]));
    }
    return { model, tokenizer, format: 'llama2c', stopTokens: [1], bosId: 1 };
  }
  if (!statSync(path).isDirectory()) throw new Error(`fromPretrained: ${path} is neither a folder with config.json nor a llama2.c .bin`);
  const ck = loadHfCheckpoint(path);
  const type = ck.config.model_type;
  let model: CausalLM;
  if (type === 'gpt2') {
    const m = new GPT2(gpt2ConfigFromHf(ck.config));
    if ([...ck.tensors.keys()].some((k) => k.startsWith('transformer.'))) m.savePrefix = 'transformer.';
    m.loadStateDict(ck.tensors);
    model = m;
  } else if (type === 'llama') {
    const m = new Llama(llamaConfigFromHf(ck.config));
    m.loadStateDict(ck.tensors);
    model = m;
  } else {
    throw new Error(`fromPretrained: ${join(path, 'config.json')} has model_type ${JSON.stringify(type)}; gpt2 and llama are supported`);
  }
  // tokenizer.json, or a llama2.c tokenizer (the trainers copy tok*.bin beside a model that came from a .bin)
  const hasTokenizer = existsSync(join(path, 'tokenizer.json')) || readdirSync(path).filter((f) => /^tok.*\.bin$|^tokenizer\.bin$/.test(f)).length === 1;
  const tokenizer = given ?? (hasTokenizer ? loadTokenizer(path) : undefined);
  const eos = typeof ck.config.eos_token_id === 'number' ? ck.config.eos_token_id : tokenizer?.eosId;
  const bos = typeof ck.config.bos_token_id === 'number' ? ck.config.bos_token_id : tokenizer?.bosId;
  return { model, tokenizer, format: 'hf', stopTokens: eos !== undefined ? [eos] : [], bosId: bos };
}

/** Writes a model as a Hugging Face folder (config.json + model.safetensors), atomically per file. */
export function savePretrained(model: CausalLM, dir: string): void {
  saveHfCheckpoint(dir, model.hfConfig(), model.stateDict());
}
