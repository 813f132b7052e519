/**
 * `--device` on the training commands (TrainingArgs.device): sft on the emulated device writes the very model
 * and checkpoint files the cpu writes; a device whose backend cannot load is refused, naming the flag's field.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT2, saveModelDir, saveTokenizer, trainByteLevelBpe } from '@rlhf/core';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerSft } from './sft';

const root = mkdtempSync(join(tmpdir(), 'rlhf-cli-device-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const base = join(root, 'base');
const demos = join(root, 'demos.jsonl');

beforeAll(() => {
  const tok = trainByteLevelBpe(['the sky is blue. the grass is green. is the sky blue? yes. no. hello there.'], { vocabSize: 290 });
  const model = new GPT2({ vocabSize: tok.vocabSize, nPositions: 64, nEmbd: 32, nLayer: 1, nHead: 2 }, { seed: 1 });
  mkdirSync(base, { recursive: true });
  saveModelDir(base, model.hfConfig(), model.stateDict());
  saveTokenizer(base, tok);
  const rows = [
    { kind: 'demonstration', prompt: 'is the sky blue?', completion: ' yes.' },
    { kind: 'demonstration', prompt: 'is the grass blue?', completion: ' no.' },
    { kind: 'demonstration', prompt: 'hello', completion: ' hello there.' },
  ];
  writeFileSync(demos, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
});

/** Runs `rlhf sft ...` in-process; returns the summary line it printed. */
async function sft(...args: string[]): Promise<Record<string, unknown>> {
  const program = new Command('rlhf').exitOverride();
  registerSft(program);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out += String(s);
    return true;
  });
  const quiet = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'rlhf', 'sft', '--model-path', base, '--dataset-path', demos, '--learning-rate', '1e-2', '--per-device-train-batch-size', '2', '--max-steps', '3', ...args]);
  } finally {
    spy.mockRestore();
    quiet.mockRestore();
  }
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

describe('rlhf sft --device', () => {
  it('emulated: the same final model and checkpoint files as the cpu, bit for bit', async () => {
    for (const device of ['cpu', 'emulated']) expect(await sft('--out', join(root, device), '--device', device)).toMatchObject({ command: 'sft', steps: 3, saved: 'model' });
    for (const file of ['final/model.safetensors', 'checkpoint-3/model.safetensors', 'checkpoint-3/optimizer.safetensors']) {
      expect(readFileSync(join(root, 'emulated', file)).equals(readFileSync(join(root, 'cpu', file))), file).toBe(true);
    }
    const metrics = readFileSync(join(root, 'emulated', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((r) => 'loss' in r).every((r) => r.deviceMemoryPeakMiB > 0)).toBe(true);
  });

  it('refuses an unknown device and names the field', async () => {
    await expect(sft('--out', join(root, 'tpu'), '--device', 'tpu')).rejects.toThrow(/device/);
  });
});
