/**
 * `rlhf generate`: text from a model (a Hugging Face folder or a llama2.c .bin), with the KV cache.
 * Prints the prompt's text followed by the continuation, one line. Sampling is seeded (default seed 0),
 * so the same command prints the same text; --temperature 0 is greedy. --json prints the token ids and
 * their log-probs as well. --device runs the model on a device (cuda), sampling there (core's generate()).
 * --chat sends --prompt (with --system before it) as a chat message through the tokenizer's chat template (or
 * --chat-template's) with the assistant's header appended, and prints the reply only.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEVICES, encodePrompt, fromPretrained, generate, loadTokenizerFile, resolveChatTemplate, withChatTemplate } from '@rlhf/core';
import { CHAT_TEMPLATE_HELP, parseDevice, singleProcessOnly } from './train-common';

export interface GenerateIo {
  out(s: string): void;
}

const defaultIo: GenerateIo = { out: (s) => process.stdout.write(s) };

/** The sampler's generator has 32 bits of state: a larger seed would repeat a smaller one's samples. */
export const MAX_SEED = 2 ** 32 - 1;

/**
 * A number flag; `range` is [lo, hi] (both included; `loOpen` leaves lo out), named in the message so
 * that a value the sampler would refuse is reported by its flag.
 */
function num(name: string, integer: boolean, range?: { lo: number; hi?: number; loOpen?: boolean }) {
  return (v: string): number => {
    const x = Number(v);
    const what = integer ? 'an integer' : 'a number';
    if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x))) {
      throw new Error(`--${name} must be ${what}, got ${JSON.stringify(v)}`);
    }
    if (range && ((range.loOpen ? !(x > range.lo) : !(x >= range.lo)) || (range.hi !== undefined && x > range.hi))) {
      const bounds = range.hi === undefined ? `${range.loOpen ? '>' : '>='} ${range.lo}` : `in ${range.loOpen ? '(' : '['}${range.lo}, ${range.hi}]`;
      throw new Error(`--${name} must be ${what} ${bounds}, got ${JSON.stringify(v)}`);
    }
    return x;
  };
}

/** Our sampling flags' defaults, where neither a flag nor the model's generation_config.json says otherwise. */
const SAMPLING_DEFAULTS = { temperature: 1, topK: 0, topP: 1 };

/** generation_config.json keys that change nothing `rlhf generate` computes (ids it reads elsewhere, bookkeeping). */
const GENERATION_KEYS_INERT = new Set([
  'bos_token_id', 'eos_token_id', 'pad_token_id', 'decoder_start_token_id', 'transformers_version', '_from_model_config',
  // lengths: --max-new-tokens governs, capped by the model's window
  'max_length', 'max_new_tokens', 'use_cache', 'return_dict_in_generate', 'output_scores', 'output_logits',
  'output_attentions', 'output_hidden_states', 'num_return_sequences', 'cache_implementation',
]);

/**
 * The sampling defaults of a model folder's generation_config.json, as transformers' generate() takes them:
 * do_sample false is greedy; temperature, top_k, top_p. A key that would change what is generated and that this
 * command does not implement (repetition_penalty, num_beams, min_p, ...), with a value other than its neutral one,
 * is refused by name unless `ignore` (then the flags and our defaults alone are used).
 */
export function generationDefaults(model: string, ignore: boolean): { temperature?: number; topK?: number; topP?: number } {
  const path = existsSync(model) && statSync(model).isDirectory() ? join(model, 'generation_config.json') : '';
  if (!path || !existsSync(path) || ignore) return {};
  let g: Record<string, unknown>;
  try {
    g = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: not JSON (${(e as Error).message}); fix it, or pass --ignore-generation-config`);
  }
  if (!g || typeof g !== 'object' || Array.isArray(g)) throw new Error(`${path}: not a JSON object; fix it, or pass --ignore-generation-config`);
  // neutral values: the key then changes nothing (transformers' GenerationConfig defaults)
  const neutral: Record<string, (v: unknown) => boolean> = {
    repetition_penalty: (v) => v === 1 || v === 1.0, num_beams: (v) => v === 1, num_beam_groups: (v) => v === 1,
    no_repeat_ngram_size: (v) => v === 0, typical_p: (v) => v === 1, epsilon_cutoff: (v) => v === 0, eta_cutoff: (v) => v === 0,
    min_p: (v) => v == null || v === 0, min_length: (v) => v === 0, min_new_tokens: (v) => v == null || v === 0,
    encoder_repetition_penalty: (v) => v === 1, length_penalty: () => g.num_beams === undefined || g.num_beams === 1,
    diversity_penalty: (v) => v === 0, early_stopping: () => g.num_beams === undefined || g.num_beams === 1,
  };
  const handled = new Set(['do_sample', 'temperature', 'top_k', 'top_p']);
  const unsupported = Object.entries(g).filter(([k, v]) => !handled.has(k) && !GENERATION_KEYS_INERT.has(k) && v !== null && !(neutral[k]?.(v) ?? false));
  if (unsupported.length > 0) {
    const list = unsupported.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ');
    throw new Error(`${path}: ${list}: not implemented by rlhf generate, and the model's authors generate with it; pass --ignore-generation-config to sample with the flags and rlhf's defaults alone`);
  }
  const number = (k: string, ok: (x: number) => boolean): number | undefined => {
    const v = g[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !ok(v)) throw new Error(`${path}: ${k} = ${JSON.stringify(v)} is not a valid value; fix it, or pass --ignore-generation-config`);
    return v;
  };
  const temperature = number('temperature', (x) => x > 0);
  const topK = number('top_k', (x) => Number.isInteger(x) && x >= 0);
  const topP = number('top_p', (x) => x > 0 && x <= 1);
  // do_sample false (transformers' default when the key is absent): greedy, whatever temperature says
  if (g.do_sample !== true) return { temperature: 0 };
  return { temperature, topK, topP };
}

export function registerGenerate(program: Command, io: GenerateIo = defaultIo): void {
  program
    .command('generate')
    .description('generate text from a model: a folder with config.json + model.safetensors, or a llama2.c .bin')
    .requiredOption('--model <path>', 'model folder or llama2.c checkpoint (.bin)')
    .option('--tokenizer <path>', 'tokenizer file (default: the one beside the model, e.g. tok512.bin)')
    .option('--prompt <text>', 'text to continue (default: start from BOS); with --chat, the user\'s message', '')
    .option('--chat', "send --prompt as a user message through the chat template, with the assistant's header appended (an instruct model's reply); prints the reply only")
    .option('--system <text>', 'with --chat: a system message before the user\'s')
    .option('--chat-template <name|file>', `with --chat: ${CHAT_TEMPLATE_HELP}`)
    .option('--max-new-tokens <n>', "tokens to generate at most (fewer when the prompt leaves less room in the model's window)", num('max-new-tokens', true, { lo: 0 }), 64)
    .option('--temperature <t>', "softmax temperature; 0 = greedy (default: the model folder's generation_config.json, as transformers samples, else 1)", num('temperature', false, { lo: 0 }))
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all; default: generation_config.json, else 0)', num('top-k', true, { lo: 0 }))
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1] (1 = all; default: generation_config.json, else 1)', num('top-p', false, { lo: 0, hi: 1, loOpen: true }))
    .option('--ignore-generation-config', "sample with the flags and rlhf's defaults alone, whatever the model's generation_config.json says")
    .option('--seed <s>', `random seed, 0 to ${MAX_SEED}`, num('seed', true, { lo: 0, hi: MAX_SEED }), 0)
    .option('--json', 'print {text, tokens, logprobs} as JSON')
    .option('--stream', 'print the text as it is generated (each step\'s token as soon as it is sampled)')
    .option('--device <name>', `where the model runs: ${DEVICES.join(' | ')} (cuda: rlhf_cuda.node and an NVIDIA GPU; emulated: the test device)`, 'cpu')
    .action((o: { model: string; tokenizer?: string; prompt: string; chat?: boolean; system?: string; chatTemplate?: string; maxNewTokens: number; temperature?: number; topK?: number; topP?: number; ignoreGenerationConfig?: boolean; seed: number; json?: boolean; stream?: boolean; device: string }) => {
      singleProcessOnly('generate');
      // flags first, then the model's generation_config.json, then ours
      const fromFile = generationDefaults(o.model, o.ignoreGenerationConfig === true);
      const temperature = o.temperature ?? fromFile.temperature ?? SAMPLING_DEFAULTS.temperature;
      const topK = o.topK ?? fromFile.topK ?? SAMPLING_DEFAULTS.topK;
      const topP = o.topP ?? fromFile.topP ?? SAMPLING_DEFAULTS.topP;
      const device = parseDevice(o.device);
      const pre = fromPretrained(o.model, { tokenizer: o.tokenizer ? loadTokenizerFile(o.tokenizer) : undefined });
      if (device !== 'cpu') pre.model.to(device);
      let tok = pre.tokenizer;
      if (!o.chat && (o.system !== undefined || o.chatTemplate !== undefined)) throw new Error(`${o.system !== undefined ? '--system' : '--chat-template'} applies to --chat only: add --chat`);
      let prompt: number[];
      // the text printed before the continuation: the prompt's (none with --chat: the reply alone)
      const shown = o.chat ? '' : o.prompt;
      if (o.chat) {
        if (!o.prompt) throw new Error('--chat needs a --prompt: the user\'s message');
        if (!tok) throw new Error('--chat needs a tokenizer: pass --tokenizer, or put one beside the model');
        if (o.chatTemplate !== undefined) tok = withChatTemplate(tok, resolveChatTemplate(o.chatTemplate, '--chat-template'));
        const messages = [...(o.system !== undefined ? [{ role: 'system' as const, content: o.system }] : []), { role: 'user' as const, content: o.prompt }];
        prompt = encodePrompt(tok, messages);
      } else if (o.prompt) {
        if (!tok) throw new Error('--prompt needs a tokenizer: pass --tokenizer, or put one beside the model');
        prompt = tok.encode(o.prompt, { addBos: true });
      } else {
        const bos = pre.bosId ?? tok?.bosId;
        if (bos === undefined) throw new Error('this model has no BOS token to start from: give a --prompt');
        prompt = [bos];
      }
      const window = pre.model.maxPositions;
      if (prompt.length > window || (prompt.length === window && o.maxNewTokens > 0)) {
        throw new Error(`--prompt is ${prompt.length} tokens (with BOS${o.chat ? ' and the chat template' : ''}) and the model's window is ${window} positions: no room to generate; shorten the prompt`);
      }
      const stopTokens = [...new Set([...pre.stopTokens, ...(tok?.eosId !== undefined ? [tok.eosId] : [])])];
      if (o.stream && o.json) throw new Error('--stream prints text as it comes; --json prints one object at the end: give one of them');
      if (o.stream && !tok) throw new Error('--stream needs a tokenizer: pass --tokenizer, or put one beside the model');
      // --stream: the text decoded so far (as generate() decodes it at the end: the prompt as context, its own text
      // cut off), printed by the part that grew; whatever a later token rewrites (a partial character) waits
      let printed = '';
      const fresh: number[] = [];
      const before = tok && o.stream ? tok.decode(prompt) : '';
      const stops = new Set(stopTokens);
      const onToken = o.stream && tok
        ? (_row: number, t: number) => {
            if (stops.has(t)) return;
            fresh.push(t);
            const all = tok.decode([...prompt, ...fresh]);
            // a character whose bytes are not all sampled yet decodes as U+FFFD: held back until they are
            const text = (shown + (all.startsWith(before) ? all.slice(before.length) : tok.decode(fresh))).replace(/\uFFFD+$/, '');
            if (printed === '' && text.length > 0) io.out(text), (printed = text);
            else if (text.startsWith(printed) && text.length > printed.length) io.out(text.slice(printed.length)), (printed = text);
          }
        : undefined;
      if (onToken && shown !== '') io.out((printed = shown));
      const r = generate(pre.model, [prompt], {
        onToken,
        maxNewTokens: Math.min(o.maxNewTokens, pre.model.maxPositions - prompt.length),
        temperature,
        topK,
        topP,
        seed: o.seed,
        stopTokens,
        tokenizer: tok,
      });
      const text = tok ? shown + r.text![0] : r.tokens[0].join(' ');
      if (o.json) io.out(`${JSON.stringify({ text, tokens: r.tokens[0], logprobs: r.logprobs[0], stopped: r.stopped[0] })}\n`);
      else if (onToken) {
        // the end: the rest of the line that the run without --stream prints (what the stream held back); should a
        // later token have changed text already printed, the whole final text follows on a line of its own
        io.out(text.startsWith(printed) ? `${text.slice(printed.length)}\n` : `\n${text}\n`);
      } else io.out(`${text}\n`);
    });
}
