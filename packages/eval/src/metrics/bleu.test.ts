import { describe, expect, it } from 'vitest';
import { sentenceBleu, tokenize13a } from './bleu';

// Expected values are worked by hand from the definition (Papineni et al. 2002; sacrebleu's "exp" smoothing
// and effective order), in the comments beside each case.
describe('sentenceBleu', () => {
  it('is 100 for an identical sentence', () => {
    expect(sentenceBleu('The cat sat on the mat.', ['The cat sat on the mat.']).score).toBeCloseTo(100, 10);
  });

  it('multiplies the clipped n-gram precisions geometrically', () => {
    // a b c d vs a b c e: p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0/1 -> 1/(2·1) = 1/2; BP = 1
    const r = sentenceBleu('a b c d', ['a b c e']);
    [75, (2 / 3) * 100, 50, 50].forEach((p, i) => expect(r.precisions[i]).toBeCloseTo(p, 10));
    expect(r.score).toBeCloseTo(100 * (0.75 * (2 / 3) * 0.5 * 0.5) ** 0.25, 10); // 59.46
  });

  it('doubles the smoothing denominator at each order without a match', () => {
    // a x b y c vs a b c: p1 = 3/5; p2 = 1/(2·4); p3 = 1/(4·3); p4 = 1/(8·2); c = 5 > r = 3 so BP = 1
    const r = sentenceBleu('a x b y c', ['a b c']);
    expect(r.score).toBeCloseTo(100 * (0.6 * 0.125 * (1 / 12) * 0.0625) ** 0.25, 10); // 14.06
  });

  it('applies the brevity penalty and the effective order', () => {
    // a b vs a b c d: only orders 1 and 2 exist (p = 1 each); BP = exp(1 − 4/2)
    const r = sentenceBleu('a b', ['a b c d']);
    expect(r.precisions).toHaveLength(2);
    expect(r.brevityPenalty).toBeCloseTo(Math.exp(-1), 12);
    expect(r.score).toBeCloseTo(100 * Math.exp(-1), 10);
  });

  it('clips counts by the reference and takes the closest reference length', () => {
    // Papineni's "the the the the the the the" vs "the cat is on the mat": unigram precision 2/7
    const r = sentenceBleu('the the the the the the the', ['the cat is on the mat', 'there is a cat on the mat']);
    expect(r.precisions[0]).toBeCloseTo((2 / 7) * 100, 10);
    expect(r.refLength).toBe(7); // references of 6 and 7 tokens: 7 matches the hypothesis's 7
    expect(sentenceBleu('', ['a b']).score).toBe(0);
  });

  it('tokenizes like mteval 13a', () => {
    expect(tokenize13a('Hello, world.')).toEqual(['Hello', ',', 'world', '.']);
    expect(tokenize13a('pi is 3.14, or 1,000 (x)')).toEqual(['pi', 'is', '3.14', ',', 'or', '1,000', '(', 'x', ')']);
    // 13a's punctuation class leaves out the apostrophe, so contractions stay whole
    expect(tokenize13a("it's 5-6")).toEqual(["it's", '5', '-', '6']);
  });
});
