/**
 * fromPretrained: a model (and its tokenizer, when one is found) from
 *  - a Hugging Face folder: config.json (model_type gpt2 or llama) + model.safetensors (or shards), or
 *  - a llama2.c checkpoint `.bin` (+ a `tok*.bin` / `tokenizer.bin` beside it, or the one given).
 * The readers are io/ (safetensors, llama2.c) and tokenizers/ (loadTokenizer: tok*.bin, tokenizer.json).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { StateDict } from '../io/dtypes';
import { loadHfCheckpoint, saveHfCheckpoint } from '../io/hf-checkpoint';
import { readLlama2cCheckpoint } from '../io/llama2c';
import { loadTokenizer } from '../tokenizers/load-tokenizer';
import type { Tokenizer } from '../tokenizers/types';
import type { CausalLM } from './common';
import { GPT2, gpt2ConfigFromHf, gpt2ParameterCount } from './gpt2';
import { Llama, llamaConfigFromHf, llamaParameterCount } from './llama';

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
    loadWeights(path, model, ck.tensors);
    let tokenizer = given;
    if (!tokenizer) {
      const dir = dirname(path);
      const found = readdirSync(dir).filter((f) => /^tok.*\.bin$|^tokenizer\.bin$/.test(f));
      if (found.length === 1) tokenizer = loadTokenizer(join(dir, found[0]));
    }
    checkTokenizerFits(path, model, tokenizer);
    return { model, tokenizer, format: 'llama2c', stopTokens: [1], bosId: 1 };
  }
  if (!statSync(path).isDirectory()) throw new Error(`fromPretrained: ${path} is neither a folder with config.json nor a llama2.c .bin`);
  if (!existsSync(join(path, 'config.json'))) {
    const bins = readdirSync(path).filter((f) => f.endsWith('.bin') && !/^tok.*\.bin$|^tokenizer\.bin$/.test(f));
    const hint = bins.length ? ` (for a llama2.c checkpoint, pass the .bin file itself: ${join(path, bins[0])})` : '';
    throw new Error(`fromPretrained: ${path} has no config.json: not a Hugging Face model folder${hint}`);
  }
  const ck = loadHfCheckpoint(path);
  const model = causalLMForWeights(path, ck.config, ck.tensors);
  loadWeights(path, model, ck.tensors);
  // tokenizer.json, or a llama2.c tokenizer (the trainers copy tok*.bin beside a model that came from a .bin)
  const hasTokenizer = existsSync(join(path, 'tokenizer.json')) || readdirSync(path).filter((f) => /^tok.*\.bin$|^tokenizer\.bin$/.test(f)).length === 1;
  const tokenizer = given ?? (hasTokenizer ? loadTokenizer(path) : undefined);
  checkTokenizerFits(path, model, tokenizer);
  const eos = typeof ck.config.eos_token_id === 'number' ? ck.config.eos_token_id : tokenizer?.eosId;
  const bos = typeof ck.config.bos_token_id === 'number' ? ck.config.bos_token_id : tokenizer?.bosId;
  return { model, tokenizer, format: 'hf', stopTokens: eos !== undefined ? [eos] : [], bosId: bos };
}

/**
 * The (not yet loaded) model that the config.json of folder `dir` describes, checked against the weights read
 * from the folder before anything is allocated: a config that needs far more parameters than the files hold (a
 * wrong config.json, or an absurd size such as n_layer 10^9) is refused, naming the file and its fields.
 */
export function causalLMForWeights(dir: string, config: Record<string, unknown>, tensors: StateDict): CausalLM {
  const configPath = join(dir, 'config.json');
  const type = config.model_type;
  let need: number;
  let fields: string;
  let make: () => CausalLM;
  if (type === 'gpt2') {
    const c = gpt2ConfigFromHf(config, configPath);
    need = gpt2ParameterCount(c);
    fields = `vocab_size=${c.vocabSize}, n_positions=${c.nPositions}, n_embd=${c.nEmbd}, n_layer=${c.nLayer}`;
    make = () => {
      const m = new GPT2(c);
      if ([...tensors.keys()].some((k) => k.startsWith('transformer.'))) m.savePrefix = 'transformer.';
      return m;
    };
  } else if (type === 'llama') {
    const c = llamaConfigFromHf(config, configPath);
    need = llamaParameterCount(c);
    fields = `vocab_size=${c.vocabSize}, hidden_size=${c.hiddenSize}, intermediate_size=${c.intermediateSize}, num_hidden_layers=${c.numLayers}`;
    make = () => new Llama(c);
  } else {
    throw new Error(`fromPretrained: ${configPath} has model_type ${JSON.stringify(type)}; gpt2 and llama are supported`);
  }
  let have = 0;
  for (const t of tensors.values()) if (t.data instanceof Float32Array) have += t.data.length;
  // A small shortfall (a missing tensor) is left to the strict load, which names the tensor; allocating up to
  // twice what the files hold is bounded by their size.
  if (need > 2 * have + (1 << 20)) {
    throw new Error(
      `fromPretrained: ${configPath} describes a ${type} model of ${need} parameters (${fields}) but the weights in ${dir} ` +
        `hold ${have} values: config.json does not match the weights`,
    );
  }
  return make();
}

/** model.loadStateDict with the checkpoint named in the error (which tensor is missing, unexpected or misshapen). */
function loadWeights(path: string, model: CausalLM, tensors: StateDict): void {
  try {
    model.loadStateDict(tensors);
  } catch (e) {
    const weights = !statSync(path).isDirectory()
      ? path
      : existsSync(join(path, 'model.safetensors'))
        ? join(path, 'model.safetensors')
        : join(path, 'model.safetensors.index.json');
    throw new Error(`fromPretrained: ${weights} does not fit the model of its config: ${(e as Error).message}`, { cause: e });
  }
}

/** A tokenizer with ids past the model's vocabulary would fail mid-generation: refuse it at load, naming both sizes. */
function checkTokenizerFits(path: string, model: CausalLM, tokenizer: Tokenizer | undefined): void {
  if (tokenizer && tokenizer.vocabSize > model.vocabSize) {
    throw new Error(
      `fromPretrained: the tokenizer has ${tokenizer.vocabSize} tokens but the model at ${path} has a vocabulary of ${model.vocabSize}: ` +
        'they do not belong together (pass the tokenizer of this model)',
    );
  }
}

/** Writes a model as a Hugging Face folder (config.json + model.safetensors), atomically per file. */
export function savePretrained(model: CausalLM, dir: string): void {
  saveHfCheckpoint(dir, model.hfConfig(), model.stateDict());
}
