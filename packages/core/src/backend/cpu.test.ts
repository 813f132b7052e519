import { describe, expect, it } from 'vitest';
import { kernelSources } from './cpu';

describe('kernel table', () => {
  it('serves every kernel from the native addon', () => {
    const src = kernelSources();
    const notNative = Object.entries(src).filter(([, s]) => s !== 'native').map(([n]) => n);
    expect(notNative, `kernels not served natively (stale addon? rebuild @rlhf/native): ${notNative.join(', ')}`).toEqual([]);
    expect(Object.keys(src).length).toBe(34);
  });
});
