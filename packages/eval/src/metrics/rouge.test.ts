import { describe, expect, it } from 'vitest';
import { lcsLength, rougeL, rougeN, tokenizeRouge } from './rouge';

describe('ROUGE', () => {
  it('ROUGE-L reproduces the examples of Lin (2004), section 3.1', () => {
    // reference "police killed the gunman"; S2 shares "police the gunman" (LCS 3), S3 "the gunman" (LCS 2)
    expect(rougeL('police kill the gunman', 'police killed the gunman').f).toBeCloseTo(0.75, 12);
    expect(rougeL('the gunman kill police', 'police killed the gunman').f).toBeCloseTo(0.5, 12);
  });

  it('ROUGE-N counts clipped n-gram overlap', () => {
    const r1 = rougeN('the cat sat', 'the cat sat on the mat', 1);
    expect([r1.precision, r1.recall]).toEqual([1, 0.5]);
    expect(r1.f).toBeCloseTo(2 / 3, 12);
    const r2 = rougeN('the cat sat', 'the cat sat on the mat', 2);
    expect(r2.f).toBeCloseTo((2 * 1 * 0.4) / 1.4, 12);
    // "the the the" vs "the cat": one "the" in the reference, so overlap 1
    expect(rougeN('the the the', 'the cat', 1).precision).toBeCloseTo(1 / 3, 12);
    expect(rougeN('', 'the cat', 1).f).toBe(0);
  });

  it('tokenizes by lower-casing and splitting on non-alphanumerics', () => {
    expect(tokenizeRouge("Don't PANIC, 42!")).toEqual(['don', 't', 'panic', '42']);
    expect(lcsLength(['a', 'b', 'c', 'd'], ['b', 'd', 'a'])).toBe(2);
  });
});
