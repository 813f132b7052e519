/**
 * ROUGE-N and ROUGE-L F-measures (Lin 2004) with the tokenization of Google's rouge_score package without
 * stemming: lower-case, every run of characters outside [a-z0-9] is a separator. F = 2PR / (P + R), 0 when
 * either side is empty. Values in [0, 1].
 */

export function tokenizeRouge(text: string): string[] {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').split(' ').filter(Boolean);
}

export interface RougeScore {
  precision: number;
  recall: number;
  f: number;
}

function fScore(overlap: number, hypTotal: number, refTotal: number): RougeScore {
  const precision = hypTotal ? overlap / hypTotal : 0;
  const recall = refTotal ? overlap / refTotal : 0;
  const f = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
  return { precision, recall, f };
}

/** ROUGE-N: clipped n-gram overlap. */
export function rougeN(hypothesis: string, reference: string, n: number): RougeScore {
  const grams = (t: string[]) => {
    const m = new Map<string, number>();
    for (let i = 0; i + n <= t.length; i++) {
      const g = t.slice(i, i + n).join(' ');
      m.set(g, (m.get(g) ?? 0) + 1);
    }
    return m;
  };
  const h = grams(tokenizeRouge(hypothesis)), r = grams(tokenizeRouge(reference));
  let overlap = 0, ht = 0, rt = 0;
  for (const [g, k] of h) {
    ht += k;
    overlap += Math.min(k, r.get(g) ?? 0);
  }
  for (const k of r.values()) rt += k;
  return fScore(overlap, ht, rt);
}

/** Length of the longest common subsequence (dynamic programme over two rows). */
export function lcsLength(a: string[], b: string[]): number {
  let prev = new Int32Array(b.length + 1), cur = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

/** ROUGE-L: longest common subsequence of the two token sequences. */
export function rougeL(hypothesis: string, reference: string): RougeScore {
  const h = tokenizeRouge(hypothesis), r = tokenizeRouge(reference);
  return fScore(lcsLength(h, r), h.length, r.length);
}
