/**
 * Sentence BLEU (Papineni et al. 2002) as sacrebleu's `sentence_bleu` defines it: 13a tokenization, n-grams
 * up to 4 with clipped counts, "exp" smoothing (the k-th order with no match counts as 1 / (2^k · total)),
 * effective order (orders the hypothesis is too short to have are left out of the geometric mean), brevity
 * penalty exp(1 − r/c) when the hypothesis (c tokens) is shorter than the reference (r tokens). Scores are on
 * sacrebleu's 0-100 scale. With several references, r is the length closest to c (ties to the shorter) and
 * n-gram counts are clipped by their maximum over the references.
 */

/** mteval-v13a tokenization: punctuation split from words; '.' and ',' kept inside numbers. */
export function tokenize13a(text: string): string[] {
  let s = text.replace(/<skipped>/g, '').replace(/-\n/g, '').replace(/\n/g, ' ');
  if (s.includes('&')) s = s.replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>');
  s = ` ${s} `;
  s = s.replace(/([{-~[-` -&(-+:-@/])/g, ' $1 ');
  s = s.replace(/([^0-9])([.,])/g, '$1 $2 ');
  s = s.replace(/([.,])([^0-9])/g, ' $1 $2');
  s = s.replace(/([0-9])(-)/g, '$1 $2 ');
  return s.split(/\s+/).filter(Boolean);
}

function ngramCounts(tokens: string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join('\u0001');
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

export interface BleuDetail {
  score: number;
  /** modified n-gram precisions (percent, smoothed), orders 1..4 */
  precisions: number[];
  brevityPenalty: number;
  hypLength: number;
  refLength: number;
}

export function sentenceBleu(hypothesis: string, references: string[], maxOrder = 4): BleuDetail {
  if (!references.length) throw new RangeError('sentenceBleu: give at least one reference');
  const hyp = tokenize13a(hypothesis);
  const refs = references.map(tokenize13a);
  const c = hyp.length;
  // closest reference length, ties to the shorter one
  let r = refs[0].length;
  for (const ref of refs) {
    const d = Math.abs(ref.length - c), best = Math.abs(r - c);
    if (d < best || (d === best && ref.length < r)) r = ref.length;
  }
  const precisions: number[] = [];
  let logSum = 0, order = 0, smooth = 1;
  for (let n = 1; n <= maxOrder; n++) {
    const total = Math.max(0, c - n + 1);
    if (total === 0) break; // effective order: the hypothesis has no n-grams of this size
    const h = ngramCounts(hyp, n);
    const maxRef = new Map<string, number>();
    for (const ref of refs) for (const [g, k] of ngramCounts(ref, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, k));
    let correct = 0;
    for (const [g, k] of h) correct += Math.min(k, maxRef.get(g) ?? 0);
    let p: number;
    if (correct === 0) {
      smooth *= 2;
      p = 100 / (smooth * total);
    } else p = (100 * correct) / total;
    precisions.push(p);
    logSum += Math.log(p / 100);
    order++;
  }
  const brevityPenalty = c === 0 ? 0 : c < r ? Math.exp(1 - r / c) : 1;
  const score = c === 0 || order === 0 ? 0 : 100 * brevityPenalty * Math.exp(logSum / order);
  return { score, precisions, brevityPenalty, hypLength: c, refLength: r };
}
