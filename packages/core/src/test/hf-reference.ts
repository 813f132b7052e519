/**
 * Test helpers for checking our model families against hf_reference.py, the independent PyTorch implementation
 * beside this file (Debian's python3-torch, run as /usr/bin/python3; scripts/setup-python-torch.sh installs it):
 * whether it can run, one call for many jobs, and random weights with enough spread that greedy decoding is
 * not decided by rounding.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CausalLM } from '../model/common';
import { Rng } from '../util/rng';

export const PYTHON = process.env.RLHF_TORCH_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'hf_reference.py');

/** Whether PYTHON imports torch; the reason when not. */
export function torchAvailable(): { ok: boolean; why?: string } {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return { ok: false, why: `${PYTHON}: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, why: `${PYTHON} cannot import torch: ${r.stderr.trim().split('\n').pop()}` };
  return { ok: true };
}

export interface ReferenceJob {
  dir: string;
  prompts: number[][];
  /** greedy tokens to add to each prompt */
  steps: number;
  /** a PEFT LoRA adapter folder to apply to the model (hf_reference.py's read_adapter) */
  adapter?: string;
}

export interface ReferenceResult {
  /** prompt then the greedy tokens */
  ids: number[];
  /** log p(ids[t + 1] | ids[..t]) for every t */
  logprobs: number[];
  /** top-1 minus top-2 logit at each greedy step */
  margins: number[];
}

/** Runs the jobs in one Python process; a job that failed there throws here with Python's message. */
export function runReference(jobs: ReferenceJob[]): ReferenceResult[][] {
  const tmp = mkdtempSync(join(tmpdir(), 'rlhf-hf-reference-'));
  try {
    const jobsPath = join(tmp, 'jobs.json');
    writeFileSync(jobsPath, JSON.stringify(jobs));
    const r = spawnSync(PYTHON, [SCRIPT, jobsPath], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
      env: { ...process.env, OMP_NUM_THREADS: process.env.RLHF_NUM_THREADS ?? '2' },
    });
    if (r.status !== 0) throw new Error(`${SCRIPT} failed (${r.status}): ${r.stderr}`);
    const out = JSON.parse(r.stdout) as Array<{ results?: ReferenceResult[]; error?: string }>;
    return out.map((o, i) => {
      if (o.error) throw new Error(`hf_reference.py, job ${i} (${jobs[i].dir}): ${o.error}`);
      return o.results!;
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Weights with spread, in place: matrices N(0, (1.5 / sqrt(in))²), embeddings N(0, 1), biases N(0, 0.2²), norm
 * weights 1 + U(-0.3, 0.3). Logits then differ by whole units, so that the greedy token is the same in float32 and
 * float64 (the margins are checked too).
 */
export function spreadWeights(m: CausalLM, seed: number): void {
  const rng = new Rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  for (const [name, t] of m.namedParameters()) {
    const d = t.data;
    if (/norm|ln_/.test(name) && t.shape.length === 1) for (let i = 0; i < d.length; i++) d[i] = 1 + 0.6 * (rng.next() - 0.5);
    else if (name.endsWith('.bias')) for (let i = 0; i < d.length; i++) d[i] = 0.2 * gauss();
    else if (/embed_tokens|wte|wpe|lm_head/.test(name)) for (let i = 0; i < d.length; i++) d[i] = gauss();
    else {
      const s = 1.5 / Math.sqrt(t.shape[1]);
      for (let i = 0; i < d.length; i++) d[i] = s * gauss();
    }
  }
}
