import { describe, expect, it } from 'vitest';
import { nativeInfo } from './index';

describe('@rlhf/core', () => {
  it('reaches the native addon through @rlhf/native', () => {
    expect(nativeInfo().threads).toBeGreaterThanOrEqual(1);
  });
});
