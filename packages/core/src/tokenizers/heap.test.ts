import { describe, expect, it } from 'vitest';
import { seededRandom } from '../io/test-helpers';
import { MinHeap } from './heap';

describe('MinHeap', () => {
  it('pops in comparator order, matching a sort, with interleaved pushes', () => {
    const rand = seededRandom(5);
    for (let trial = 0; trial < 20; trial++) {
      const heap = new MinHeap<number>((a, b) => a < b);
      const kept: number[] = [];
      const popped: number[] = [];
      for (let i = 0; i < 300; i++) {
        if (rand() < 0.65 || heap.size === 0) {
          const v = Math.floor(rand() * 50); // many duplicates
          heap.push(v);
          kept.push(v);
        } else {
          kept.sort((a, b) => a - b);
          const want = kept.shift();
          popped.push(heap.pop()!);
          expect(popped.at(-1)).toBe(want);
        }
      }
      kept.sort((a, b) => a - b);
      const rest: number[] = [];
      while (heap.size) rest.push(heap.pop()!);
      expect(rest).toEqual(kept);
      expect(heap.pop()).toBeUndefined();
    }
  });

  it('orders objects by a two-key comparator (score high first, then position low first)', () => {
    const heap = new MinHeap<{ s: number; p: number }>((a, b) => (a.s !== b.s ? a.s > b.s : a.p < b.p));
    for (const [s, p] of [[1, 5], [3, 9], [3, 2], [2, 0], [3, 4]]) heap.push({ s, p });
    const out: string[] = [];
    while (heap.size) {
      const x = heap.pop()!;
      out.push(`${x.s}@${x.p}`);
    }
    expect(out).toEqual(['3@2', '3@4', '3@9', '2@0', '1@5']);
  });
});
