/**
 * The `device` field of a trainer config: the trainer moves the model there and trains it there. On the
 * emulated device (host memory behind device handles, the CPU's kernels) a run must equal the cpu's bit for bit:
 * the metrics, the final weights, the checkpoint files; a run resumed on the device from a checkpoint continues
 * as the uninterrupted one; LoRA adapters move with the model. Refusals name the field.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backendFor, deviceMemoryStats, resetDeviceMemoryPeak } from '../backend/device';
import { emulatedStats } from '../backend/emulated';
import '../backend/backends';
import { Llama } from '../model/llama';
import { Tensor } from '../tensor/tensor';
import { ConfigError } from './config';
import { readMetrics } from './metrics';
import { SftTrainer } from './sft-trainer';
import { tempDir, reversePairTask } from './test-utils';
import { resolveResume } from './checkpoint';

const tmp = tempDir('device-config');
afterAll(tmp.cleanup);

const CONFIG = { vocabSize: 12, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 32 };


const bits = (t: Tensor) => Array.from(new Uint32Array(t.to('cpu').data.slice().buffer));
const params = (m: Llama) => m.namedParameters().map(([n, t]) => [n, bits(t)] as const);
/** metrics.jsonl without the device's memory figure (the cpu has none) */
const metricsOf = (dir: string) => readMetrics(join(dir, 'metrics.jsonl')).map(({ deviceMemoryPeakMiB: _m, ...r }) => r);
const file = (dir: string, step: number, name: string) => readFileSync(join(dir, `checkpoint-${step}`, name));

const BASE = { learningRate: 1e-2, perDeviceTrainBatchSize: 6, numTrainEpochs: 2, maxGradNorm: 0.5, seed: 3, warmupSteps: 1 };

describe('TrainingArgs.device', () => {
  it('trains on the emulated device as on the cpu, bit for bit: metrics, weights, checkpoint files; and logs the device peak', () => {
    const runs = (['cpu', 'emulated'] as const).map((device) => {
      const model = new Llama(CONFIG, { seed: 5 });
      const out = join(tmp.path, `plain-${device}`);
      const r = new SftTrainer(model, reversePairTask(18, 1), { evalData: reversePairTask(6, 2), config: { ...BASE, outputDir: out, device, saveSteps: 3 } }).train();
      expect(model.namedParameters().every(([, t]) => t.device === device)).toBe(true);
      return { r, out, params: params(model) };
    });
    const [cpu, dev] = runs;
    expect(cpu.r.steps).toBe(6);
    expect(dev.params).toEqual(cpu.params);
    expect(metricsOf(dev.out)).toEqual(metricsOf(cpu.out));
    expect(dev.r.lastEval).toEqual(cpu.r.lastEval);
    for (const step of [3, 6]) {
      for (const name of ['model.safetensors', 'optimizer.safetensors']) expect(file(dev.out, step, name).equals(file(cpu.out, step, name)), `checkpoint-${step}/${name}`).toBe(true);
    }
    // the device's memory figure: every logged step, at least the weights, gradients and two moments (4 × 4 bytes each)
    const n = new Llama(CONFIG, { seed: 5 }).numParameters();
    const peaks = readMetrics(join(dev.out, 'metrics.jsonl')).filter((r) => 'loss' in r).map((r) => r.deviceMemoryPeakMiB as number);
    expect(peaks).toHaveLength(6);
    for (const p of peaks) expect(p).toBeGreaterThanOrEqual((16 * n) / 2 ** 20);
    expect(readMetrics(join(cpu.out, 'metrics.jsonl')).some((r) => 'deviceMemoryPeakMiB' in r)).toBe(false);
  });

  it('resumes on the emulated device from a checkpoint and ends where the uninterrupted cpu run ends', () => {
    const data = reversePairTask(18, 4);
    const full = new Llama(CONFIG, { seed: 6 });
    new SftTrainer(full, data, { config: { ...BASE, outputDir: join(tmp.path, 'full'), saveSteps: 2, saveTotalLimit: 5 } }).train();
    const resumed = new Llama(CONFIG, { seed: 99 }); // another start: everything must come from the checkpoint
    const dir = join(tmp.path, 'resumed');
    const ck = resolveResume(join(tmp.path, 'full', 'checkpoint-2'));
    const t = new SftTrainer(resumed, data, { config: { ...BASE, outputDir: dir, device: 'emulated', saveSteps: 2 }, resume: ck });
    expect(t.train().steps).toBe(6);
    expect(params(resumed)).toEqual(params(full));
    expect(file(dir, 6, 'optimizer.safetensors').equals(file(join(tmp.path, 'full'), 6, 'optimizer.safetensors'))).toBe(true);
  });

  it('moves LoRA adapters with the model: the adapters train on the device as on the cpu', () => {
    const run = (device: 'cpu' | 'emulated') => {
      const model = new Llama(CONFIG, { seed: 7 });
      new SftTrainer(model, reversePairTask(12, 5), { config: { ...BASE, outputDir: join(tmp.path, `lora-${device}`), device, lora: { r: 4, alpha: 8 } } }).train();
      const lora = model.lora!;
      expect(lora.list().every((a) => a.A.device === device && a.B.device === device)).toBe(true);
      return params(model);
    };
    const cpu = run('cpu');
    expect(cpu.some(([n]) => n.includes('lora_A'))).toBe(true);
    expect(run('emulated')).toEqual(cpu);
  });

  it("keeps the NaN guard's snapshot on the device (nanGuardSnapshotSteps 1): a normal run and an overflowing one (every update undone) equal the cpu's", () => {
    for (const [name, lr] of [['snapshot', 1e-2], ['overflow', 1e39]] as const) {
      const runs = (['cpu', 'emulated'] as const).map((device) => {
        const model = new Llama(CONFIG, { seed: 11 });
        const before = params(model);
        const out = join(tmp.path, `${name}-${device}`);
        new SftTrainer(model, reversePairTask(12, 3), { config: { ...BASE, learningRate: lr, warmupSteps: 0, outputDir: out, device, nanGuardSnapshotSteps: 1, nanGuardMaxConsecutive: 10 } }).train();
        return { before, after: params(model), metrics: metricsOf(out) };
      });
      const [cpu, dev] = runs;
      expect(dev.after, name).toEqual(cpu.after);
      expect(dev.metrics, name).toEqual(cpu.metrics);
      const skipped = cpu.metrics.filter((r) => 'loss' in r).map((r) => r.skipped ?? 0);
      if (lr > 1) {
        expect(skipped.every((x) => x === 1)).toBe(true); // each update overflowed and was undone from the snapshot
        expect(dev.after).toEqual(dev.before);
      } else {
        expect(skipped.every((x) => x === 0)).toBe(true);
        expect(dev.after).not.toEqual(dev.before);
      }
    }
  });

  it('refuses an unknown device, a model already elsewhere, and a device that cannot load, naming the field', () => {
    const cfg = (device: unknown, name: string) => ({ ...BASE, outputDir: join(tmp.path, name), device }) as never;
    expect(() => new SftTrainer(new Llama(CONFIG), reversePairTask(4, 1), { config: cfg('tpu', 'r1') })).toThrow(ConfigError);
    expect(() => new SftTrainer(new Llama(CONFIG), reversePairTask(4, 1), { config: cfg('tpu', 'r1') })).toThrow(/device/);
    const onDevice = new Llama(CONFIG).to('emulated');
    expect(() => new SftTrainer(onDevice, reversePairTask(4, 1), { config: cfg('cpu', 'r2') })).toThrow(/device: cpu, but parameter model.embed_tokens.weight is on emulated: set device to where the model is/);
    let cudaLoads = true;
    try {
      backendFor('cuda');
    } catch {
      cudaLoads = false;
    }
    // where no GPU is (CI, this machine) the backend's reason comes through; on a GPU machine the model moves
    if (!cudaLoads) expect(() => new SftTrainer(new Llama(CONFIG), reversePairTask(4, 1), { config: cfg('cuda', 'r3') })).toThrow(/device: cuda: /);
  });
});

describe('deviceMemoryStats', () => {
  it('counts the bytes of live emulated buffers and their peak since the last reset', () => {
    resetDeviceMemoryPeak('emulated');
    const before = deviceMemoryStats('emulated');
    const live = emulatedStats().live;
    const b = backendFor('emulated').alloc(1000, 'f32');
    const held = deviceMemoryStats('emulated');
    expect(held.inUse - before.inUse).toBe(4000);
    expect(held.peak).toBeGreaterThanOrEqual(before.inUse + 4000);
    b.dispose();
    expect(emulatedStats().live).toBe(live);
    expect(deviceMemoryStats('emulated').inUse).toBe(before.inUse);
    expect(deviceMemoryStats('emulated').peak).toBe(held.peak);
    resetDeviceMemoryPeak('emulated');
    expect(deviceMemoryStats('emulated').peak).toBe(before.inUse);
    expect(() => deviceMemoryStats('cpu')).toThrow(/the cpu has no device allocator/);
  });
});
