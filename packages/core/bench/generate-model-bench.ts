/**
 * generate() on the model-forward path on the cpu (decoder: 'model'), the path a device model takes (the KV cache and
 * the sampleTokens kernel): median ms of a few calls, for comparing two versions of the sources in alternation on
 * this noisy machine. Not the default path on the cpu (the native decoder, bench/decode-bench.ts).
 *
 *   RLHF_NUM_THREADS=2 node bench/run.mjs --bench generate-model
 *
 * stories260K (llama2.c, V 512): B 8, 64 new tokens, top-k 40; a random GPT-2 with V 50257 (C 128, 2 layers): B 8,
 * 32 new tokens, top-k 40 + top-p 0.9, and plain sampling.
 */
import { performance } from 'node:perf_hooks';
import { sharedPath } from '@rlhf/data';
import '../src/backend/backends';
import { generate } from '../src/generation/generate';
import { GPT2 } from '../src/model/gpt2';
import { fromPretrained } from '../src/model/pretrained';
import type { CausalLM } from '../src/model/common';

function time(model: CausalLM, prompts: number[][], opts: Record<string, unknown>, reps: number): number {
  const ts: number[] = [];
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    generate(model, prompts, { ...opts, decoder: 'model', stopTokens: [] } as never);
    if (r > 0) ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

export async function main(): Promise<void> {
  const st = fromPretrained(sharedPath('models/stories260K/stories260K.bin')).model;
  const prompts = Array.from({ length: 8 }, (_, i) => [1, 10 + i, 20 + i]);
  const g = new GPT2({ vocabSize: 50257, nPositions: 128, nEmbd: 128, nLayer: 2, nHead: 4 }, { seed: 1 });
  const a = time(st, prompts, { maxNewTokens: 64, temperature: 1, topK: 40, seed: 1 }, 5);
  const b = time(g, prompts, { maxNewTokens: 32, temperature: 0.9, topK: 40, topP: 0.9, seed: 1 }, 3);
  const c = time(g, prompts, { maxNewTokens: 32, temperature: 1, seed: 1 }, 3);
  console.log(JSON.stringify({ stories260K_B8_64tok_topk_ms: a, gpt2V50257_B8_32tok_topkp_ms: b, gpt2V50257_B8_32tok_plain_ms: c }));
}
