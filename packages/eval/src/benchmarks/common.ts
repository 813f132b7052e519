/**
 * What every model-driven benchmark takes: a causal LM with its tokenizer, a progress callback, and the
 * prefix-sharing switch; and the measure of what prefix sharing saved.
 */
import type { CausalLM, Tokenizer } from '@rlhf/core';
import { readFileSync } from 'node:fs';

export interface EvalModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** ids that end a generated answer (default: the tokenizer's EOS) */
  stopTokens?: number[];
}

export interface RunOptions {
  /** score choices through the KV cache with the context run once (default true) */
  sharePrefix?: boolean;
  /** called after each item */
  onProgress?: (done: number, total: number) => void;
}

/** Token positions the model ran and the time it took; `contextTokens` counts each question's context once. */
export interface ComputeStats {
  positionsRun: number;
  seconds: number;
  /** prompts whose context lost tokens on the left to fit the model's window */
  truncatedPrompts: number;
}

/** Context ids (with BOS) and each choice's ids as a continuation of it (a leading space, no dummy prefix). */
export function encodeChoices(tok: Tokenizer, context: string, choices: string[]): { ctx: number[]; conts: number[][] } {
  const ctx = tok.encode(context, { addBos: true });
  const conts = choices.map((c) => tok.encode(` ${c}`, { addDummyPrefix: false }));
  return { ctx, conts };
}

export function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
}
