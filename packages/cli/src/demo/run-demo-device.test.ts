/**
 * `rlhf demo --device emulated` at a tiny size: every stage (pretraining, SFT, the reward model, PPO, GRPO and the
 * evaluation's sampling and scoring) trains and samples on the emulated device (host memory behind device handles,
 * the CPU's kernels) and must give the cpu's run exactly: every figure and sample of the summary. The cpu run
 * samples through the model's forward (RLHF_DECODER=model), as a device does; the native decoder computes the same
 * logits by other kernels, so its samples may differ in the last bits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resetTransferCounts, silentProgress, transferCounts } from '@rlhf/core';
import { afterAll, describe, expect, it } from 'vitest';
import { runDemo, type DemoSummary } from './run-demo';

const root = mkdtempSync(join(tmpdir(), 'rlhf-demo-device-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Small enough to run the chain in seconds; not sized to learn the task. */
const TINY = {
  evalPrompts: 16, rmEvalPrompts: 8, curvePrompts: 8, webDocs: 200, vocabSize: 400, nLayer: 1, nEmbd: 32, nHead: 2, nPositions: 96,
  demos: 64, sftEpochs: 1, rmPrompts: 16, rmEpochs: 1, ppoEpisodes: 32, ppoBatch: 16, ppoEvalEvery: 2,
};

/** The summary without its clocks. */
const figures = (s: DemoSummary) => JSON.stringify({ ...s, times: undefined }, (k, v) => (/[sS]$/.test(k) && typeof v === 'number' && /(wall|cpu|rollout|update)S$/.test(k) ? undefined : v));

describe('rlhf demo --device emulated', () => {
  it('runs every stage on the device and gives the cpu run exactly', { timeout: 600_000 }, async () => {
    const before = process.env.RLHF_DECODER;
    process.env.RLHF_DECODER = 'model';
    try {
      const run = (device: 'cpu' | 'emulated') => runDemo({ out: join(root, device), seed: 2, quick: true, grpo: true, device, sizes: TINY, progress: () => silentProgress, print: () => {} });
      const cpu = await run('cpu');
      resetTransferCounts();
      const dev = await run('emulated');
      // it ran there: inputs went up, sampled tokens came down once per generation
      const moved = transferCounts();
      expect(moved['emulated upload input']?.count).toBeGreaterThan(100);
      expect(moved['emulated download tokens']?.count).toBeGreaterThan(10);
      expect(cpu.grpo).toBeDefined();
      expect(cpu.samples.length).toBeGreaterThan(0);
      expect(figures(dev)).toBe(figures(cpu));
    } finally {
      if (before === undefined) delete process.env.RLHF_DECODER;
      else process.env.RLHF_DECODER = before;
    }
  });
});
