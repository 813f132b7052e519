/**
 * Statistics of a record stream: counts by kind, length distributions in characters (and in tokens when a
 * tokenizer is given), the distribution of K, the tie rate, and agreement between labelers who ranked the
 * same prompt and completions: pairwise agreement and Kendall's tau-b (Kendall 1945; tau-b corrects for
 * ties in either ranking).
 */
import { hash52, promptKey } from './hash';
import { tierOf } from './ranking';
import { type DataRecord, type RecordKind, type Text, textContent } from './schemas';

/** Anything that turns text into token ids: a Hugging Face tokenizer, a BPE of our own. */
export interface Tokenizer {
  encode(text: string): number[] | ArrayLike<number>;
}

export interface Distribution {
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface Agreement {
  /** Prompts (with the same completions) ranked by two or more labelers. */
  prompts: number;
  /** Labeler pairs compared (over all such prompts). */
  labelerPairs: number;
  /** Of the completion pairs both labelers ordered strictly, the share ordered the same way. */
  pairwiseAgreement: number | null;
  /** Mean Kendall's tau-b over labeler pairs (where defined: neither ranking all ties). */
  kendallTau: number | null;
}

export interface DataStats {
  records: number;
  byKind: Partial<Record<RecordKind, number>>;
  conversational: number;
  promptChars: Distribution;
  completionChars: Distribution;
  promptTokens?: Distribution;
  completionTokens?: Distribution;
  /** Comparisons by K (preferences count as K = 2). */
  k: Record<string, number>;
  /** Share of comparisons with at least one tie, and share of completion pairs that are tied. */
  tieRate: { comparisons: number | null; pairs: number | null };
  agreement: Agreement;
  /**
   * Feedback (unpaired) labels: how many completions are desirable and undesirable, the balance KTO's
   * desirableWeight / undesirableWeight compensate (TRL suggests λ_D·desirable / (λ_U·undesirable) in [1, 4/3]).
   */
  feedbackLabels: { desirable: number; undesirable: number };
}

class Lengths {
  private a = new Float64Array(1024);
  n = 0;
  push(x: number) {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
  }
  dist(): Distribution {
    if (this.n === 0) return { count: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p99: 0 };
    const s = this.a.slice(0, this.n).sort();
    let sum = 0;
    for (const x of s) sum += x;
    // Nearest-rank percentile: the smallest value with at least p of the data at or below it.
    const q = (p: number) => s[Math.min(this.n - 1, Math.max(0, Math.ceil(p * this.n) - 1))];
    return { count: this.n, min: s[0], max: s[this.n - 1], mean: sum / this.n, p50: q(0.5), p90: q(0.9), p99: q(0.99) };
  }
}

interface Ranked {
  labeler: string;
  /** Completion (by hash of its text) -> tier, 0 best. */
  tiers: Map<number, number>;
}

/** Kendall's tau-b and the concordant / discordant counts of two rankings over their shared items. */
export function kendallTauB(a: Map<number, number>, b: Map<number, number>): { tau: number | null; concordant: number; discordant: number } {
  const items = [...a.keys()].filter((k) => b.has(k));
  let c = 0;
  let d = 0;
  let tiesA = 0;
  let tiesB = 0;
  let n0 = 0;
  for (let i = 0; i < items.length; i++) {
    for (let j = i + 1; j < items.length; j++) {
      n0++;
      const sa = Math.sign(a.get(items[i])! - a.get(items[j])!);
      const sb = Math.sign(b.get(items[i])! - b.get(items[j])!);
      if (sa === 0) tiesA++;
      if (sb === 0) tiesB++;
      if (sa * sb > 0) c++;
      else if (sa * sb < 0) d++;
    }
  }
  const denom = Math.sqrt((n0 - tiesA) * (n0 - tiesB));
  return { tau: denom > 0 ? (c - d) / denom : null, concordant: c, discordant: d };
}

/** Collects statistics record by record; `result()` at the end. */
export class StatsCollector {
  private n = 0;
  private byKind: Partial<Record<RecordKind, number>> = {};
  private conv = 0;
  private pc = new Lengths();
  private cc = new Lengths();
  private pt?: Lengths;
  private ct?: Lengths;
  private k = new Map<number, number>();
  private comparisons = 0;
  private comparisonsWithTie = 0;
  private pairs = 0;
  private tiedPairs = 0;
  private labels = { desirable: 0, undesirable: 0 };
  private groups = new Map<number, Ranked[]>();

  constructor(private readonly tokenizer?: Tokenizer) {
    if (tokenizer) {
      this.pt = new Lengths();
      this.ct = new Lengths();
    }
  }

  private prompt(t: Text | undefined) {
    if (t === undefined) return;
    const s = textContent(t);
    this.pc.push(s.length);
    if (this.tokenizer) this.pt!.push(this.tokenizer.encode(s).length);
  }

  private completion(t: Text) {
    const s = textContent(t);
    this.cc.push(s.length);
    if (this.tokenizer) this.ct!.push(this.tokenizer.encode(s).length);
  }

  add(r: DataRecord): void {
    this.n++;
    this.byKind[r.kind] = (this.byKind[r.kind] ?? 0) + 1;
    if ('prompt' in r && Array.isArray(r.prompt)) this.conv++;
    else if (r.kind === 'demonstration' && r.prompt === undefined && Array.isArray(r.completion)) this.conv++;
    this.prompt(r.prompt);
    switch (r.kind) {
      case 'demonstration':
        this.completion(r.completion);
        break;
      case 'feedback':
        this.completion(r.completion);
        this.labels[r.label ? 'desirable' : 'undesirable']++;
        break;
      case 'preference':
        this.completion(r.chosen);
        this.completion(r.rejected);
        this.k.set(2, (this.k.get(2) ?? 0) + 1);
        this.pairs++;
        break;
      case 'comparison': {
        const K = r.completions.length;
        for (const c of r.completions) this.completion(c);
        this.k.set(K, (this.k.get(K) ?? 0) + 1);
        this.comparisons++;
        if (r.ranking.some((t) => t.length > 1)) this.comparisonsWithTie++;
        this.pairs += (K * (K - 1)) / 2;
        for (const t of r.ranking) this.tiedPairs += (t.length * (t.length - 1)) / 2;
        // Same prompt and same set of completions: rankings of the same item set, comparable.
        const ch = r.completions.map((c) => hash52(JSON.stringify(c)));
        const key = hash52(`${promptKey(r.prompt)}\0${[...ch].sort((a, b) => a - b).join(',')}`);
        const tiers = tierOf(r.ranking, K);
        const list = this.groups.get(key) ?? [];
        list.push({ labeler: r.labeler ?? `#${list.length}`, tiers: new Map(ch.map((h, i) => [h, tiers[i]])) });
        this.groups.set(key, list);
        break;
      }
      case 'prompt':
        break;
    }
  }

  result(): DataStats {
    let prompts = 0;
    let labelerPairs = 0;
    let agree = 0;
    let disagree = 0;
    let tauSum = 0;
    let tauN = 0;
    for (const list of this.groups.values()) {
      if (list.length < 2) continue;
      prompts++;
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length; j++) {
          if (list[i].labeler === list[j].labeler) continue;
          labelerPairs++;
          const t = kendallTauB(list[i].tiers, list[j].tiers);
          agree += t.concordant;
          disagree += t.discordant;
          if (t.tau !== null) {
            tauSum += t.tau;
            tauN++;
          }
        }
      }
    }
    const out: DataStats = {
      records: this.n,
      byKind: this.byKind,
      conversational: this.conv,
      promptChars: this.pc.dist(),
      completionChars: this.cc.dist(),
      k: Object.fromEntries([...this.k].sort((a, b) => a[0] - b[0]).map(([k, n]) => [String(k), n])),
      tieRate: {
        comparisons: this.comparisons ? this.comparisonsWithTie / this.comparisons : null,
        pairs: this.pairs ? this.tiedPairs / this.pairs : null,
      },
      agreement: {
        prompts,
        labelerPairs,
        pairwiseAgreement: agree + disagree ? agree / (agree + disagree) : null,
        kendallTau: tauN ? tauSum / tauN : null,
      },
      feedbackLabels: { ...this.labels },
    };
    if (this.pt) out.promptTokens = this.pt.dist();
    if (this.ct) out.completionTokens = this.ct.dist();
    return out;
  }
}

/** Statistics of a stream of records. */
export async function collectStats(records: AsyncIterable<{ record: DataRecord } | DataRecord> | Iterable<{ record: DataRecord } | DataRecord>, tokenizer?: Tokenizer): Promise<DataStats> {
  const s = new StatsCollector(tokenizer);
  for await (const r of records) s.add('record' in r && !('kind' in r) ? r.record : (r as DataRecord));
  return s.result();
}
