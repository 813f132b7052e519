// One copy of each workspace package per process, in the tests too: @rlhf/core imported here (ESM) must be the
// copy that @rlhf/eval's CommonJS build requires. When vitest evaluated the CommonJS builds itself there were two,
// and a model built with one copy ran generate() of the other outside its noGrad() ("a KV cache is for inference").
import { createRequire } from 'node:module';
import * as core from '@rlhf/core';
import { describe, expect, it } from 'vitest';

describe('one copy of @rlhf/core', () => {
  it('import here, require here and require from @rlhf/eval give the same module', () => {
    const req = createRequire(import.meta.url);
    const fromEval = createRequire(req.resolve('@rlhf/eval'))('@rlhf/core');
    expect(req('@rlhf/core').Tensor).toBe(core.Tensor);
    expect(fromEval.Tensor).toBe(core.Tensor);
    expect(fromEval.noGrad).toBe(core.noGrad);
  });
});
