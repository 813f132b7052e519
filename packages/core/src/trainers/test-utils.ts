/**
 * Test helpers of the trainers: tiny seeded models and a temp-folder helper. Not exported from the package.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT2 } from '../model/gpt2';
import type { Tensor } from '../tensor/tensor';
import { StatefulRng } from './rng';
import type { SftExample } from './sft-trainer';

/** A GPT-2 small enough for a test to train in a second: V tokens, 2 layers of width 32. */
export function tinyGpt2(seed = 0, vocabSize = 12, nPositions = 32): GPT2 {
  return new GPT2({ vocabSize, nPositions, nEmbd: 32, nLayer: 2, nHead: 2 }, { seed });
}

export function tempDir(prefix: string): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), `rlhf-${prefix}-`));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Copies of every parameter's values, by name. */
export function snapshotParams(named: Array<[string, Tensor]>): Map<string, Float32Array> {
  return new Map(named.map(([n, t]) => [n, t.data.slice()]));
}

/** Names of the parameters whose values differ from the snapshot (any element). */
export function changedParams(named: Array<[string, Tensor]>, before: Map<string, Float32Array>): string[] {
  return named.filter(([n, t]) => t.data.some((x, i) => x !== before.get(n)![i])).map(([n]) => n);
}

/**
 * An SFT task a tiny model can learn: prompt BOS a b SEP, completion b a EOS (reverse the pair, a and b in 4..11),
 * every other row a shorter one (BOS a SEP, completion a EOS), so that a batch holds rows of two lengths (padding).
 */
export function reversePairTask(n: number, seed: number): SftExample[] {
  const rng = new StatefulRng(seed);
  return Array.from({ length: n }, (_, i) => {
    const a = 4 + rng.nextInt(8), b = 4 + rng.nextInt(8);
    return i % 2 ? { ids: [1, a, b, 2, b, a, 3], lossMask: [0, 0, 0, 0, 1, 1, 1] } : { ids: [1, a, 2, a, 3], lossMask: [0, 0, 0, 1, 1] };
  });
}
