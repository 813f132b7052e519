import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RewardModel } from '../model/heads';
import { fromPretrained } from '../model/pretrained';
import { noGrad } from '../tensor/autograd';
import { causalLMFromConfig, loadRewardModel, saveModelDir } from './model-dirs';
import { tempDir, tinyGpt2 } from './test-utils';

const tmp = tempDir('dirs');
afterAll(tmp.cleanup);

describe('model folders', () => {
  it('a saved policy loads with fromPretrained, tokenizer files copied', () => {
    const src = join(tmp.path, 'src');
    const m = tinyGpt2(50);
    saveModelDir(src, m.hfConfig(), m.stateDict());
    writeFileSync(join(src, 'tok512.bin'), 'x');
    const out = join(tmp.path, 'out');
    saveModelDir(out, m.hfConfig(), m.stateDict(), { tokenizerFrom: src, files: { 'note.json': '{}' } });
    expect(existsSync(join(out, 'tok512.bin'))).toBe(true);
    expect(existsSync(join(out, 'note.json'))).toBe(true);
    // fromPretrained reads a llama2.c tokenizer beside the weights: this stand-in file is not one, and says so
    expect(() => fromPretrained(out)).toThrow(/tok512\.bin: file is 1 bytes/);
    rmSync(join(out, 'tok512.bin'));
    const loaded = fromPretrained(out).model;
    expect(new Map(loaded.namedParameters()).get('h.1.mlp.c_fc.weight')!.data).toEqual(m.param('h.1.mlp.c_fc.weight').data);
  });

  it('a reward model round-trips with its normalisation and scores the same', () => {
    const rm = new RewardModel(tinyGpt2(51));
    const dir = join(tmp.path, 'rm');
    saveModelDir(dir, { ...rm.model.hfConfig(), num_labels: 1 }, rm.stateDict(), { files: { 'reward-normalization.json': '{"mean":1,"std":2,"count":3}' } });
    const back = loadRewardModel(dir);
    expect(back.normalization).toEqual({ mean: 1, std: 2, count: 3 });
    const ids = Int32Array.from([1, 4, 5, 3]);
    noGrad(() => expect(back.model.forward({ ids, B: 1, T: 4 }).data[0]).toBe(rm.forward({ ids, B: 1, T: 4 }).data[0]));
    const plain = join(tmp.path, 'plain');
    saveModelDir(plain, rm.model.hfConfig(), rm.model.stateDict());
    expect(() => loadRewardModel(plain)).toThrow(/no score.weight: not a reward model/);
    expect(() => causalLMFromConfig({ model_type: 'bert' })).toThrow(/config.json has model_type "bert"; supported are gpt2, llama/);
  });
});
