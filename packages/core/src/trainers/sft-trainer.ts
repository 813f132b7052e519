/**
 * Supervised fine-tuning on demonstrations (TRL SFTTrainer): next-token cross-entropy through the fused
 * kernel, on completion tokens only (the prompt is context) unless completionOnlyLoss is false.
 *
 * Examples arrive tokenised: `ids` (prompt + completion, as the chat template renders them) and `lossMask`,
 * 1 on the tokens to learn (the assistant tokens of the template's mask). The loss of one optimizer step is
 * the mean over every trained token of its micro-batches (each micro-batch weighted by its token count), so
 * gradient accumulation gives the same update as one big batch.
 *
 * Packing (optional) fills rows of maxLength with whole examples end to end, positions restarting at each
 * example. The attention kernel masks per key, not per block, so tokens of a packed row can attend to the
 * examples before them in the row (as TRL's classic ConstantLengthDataset packing); use it for throughput on
 * short, independent examples.
 */
import { noGrad } from '../tensor/autograd';
import type { CausalLM } from '../model/common';
import { lmHeadLoss, selectRows } from '../model/lm-head';
import { batchIndices, planRun, type RunPlan } from './grad-accum';
import { seededPermutation } from './rng';
import { sftConfig, type SftConfig } from './sft-config';
import type { ConfigInput } from './training-args';
import { TrainerBase, type TrainerOptions } from './trainer-base';

export interface SftExample {
  /** prompt + completion token ids */
  ids: ArrayLike<number>;
  /** (ids.length) 1 on the tokens to learn; omitted: every token after the first */
  lossMask?: ArrayLike<number>;
}

/** One row of a micro-batch: token ids, which of them are targets, and positions (restart per packed example). */
export interface SftRow {
  ids: number[];
  target: boolean[];
  positions: number[];
}

export interface SftBatch {
  ids: Int32Array;
  targets: Int32Array;
  attentionMask: Float32Array;
  positions: Int32Array;
  B: number;
  T: number;
  /** trained tokens */
  count: number;
}

const IGNORE = -100;

function toRow(e: SftExample, maxLength: number, completionOnly: boolean): SftRow {
  const n = Math.min(e.ids.length, maxLength);
  const ids: number[] = [];
  const target: boolean[] = [];
  const positions: number[] = [];
  for (let t = 0; t < n; t++) {
    ids.push(e.ids[t]);
    target.push(t > 0 && (!completionOnly || !e.lossMask || e.lossMask[t] !== 0));
    positions.push(t);
  }
  return { ids, target, positions };
}

/**
 * What maxLength did to a data set: examples cut to it (TRL's SFTTrainer truncates the same way, keeping the
 * start), examples dropped because no token to learn was left within it, and examples that had none at all
 * (a lossMask of zeros). Written to each checkpoint's trainer state (`extra.data`).
 */
export interface SftLengthReport {
  examples: number;
  maxLength: number;
  truncated: number;
  droppedByLength: number;
  droppedNoTarget: number;
  /** the fewest tokens of an example, and the earliest position of a token to learn (-1: none) */
  shortestExample: number;
  earliestTarget: number;
}

/** The position of an example's first token to learn (as toRow marks them), -1 when it has none. */
function firstTarget(e: SftExample, completionOnly: boolean): number {
  for (let t = 1; t < e.ids.length; t++) if (!completionOnly || !e.lossMask || e.lossMask[t] !== 0) return t;
  return -1;
}

/** Rows of the examples that keep a token to learn within maxLength, and what maxLength cost (see above). */
function toRows(data: SftExample[], maxLength: number, completionOnly: boolean): { rows: SftRow[]; report: SftLengthReport } {
  const report: SftLengthReport = { examples: data.length, maxLength, truncated: 0, droppedByLength: 0, droppedNoTarget: 0, shortestExample: Infinity, earliestTarget: -1 };
  const rows: SftRow[] = [];
  for (const e of data) {
    report.shortestExample = Math.min(report.shortestExample, e.ids.length);
    const first = firstTarget(e, completionOnly);
    if (first >= 0 && (report.earliestTarget < 0 || first < report.earliestTarget)) report.earliestTarget = first;
    if (first < 0) report.droppedNoTarget++;
    else if (first >= maxLength) report.droppedByLength++;
    else {
      if (e.ids.length > maxLength) report.truncated++;
      rows.push(toRow(e, maxLength, completionOnly));
    }
  }
  if (!data.length) report.shortestExample = 0;
  return { rows, report };
}

/** Tokens a row trains on (its first token is never a target). */
function countTargets(r: SftRow): number {
  let n = 0;
  for (let t = 1; t < r.target.length; t++) if (r.target[t]) n++;
  return n;
}

/** Greedy packing of whole rows into rows of at most maxLength (order kept). */
function pack(rows: SftRow[], maxLength: number): SftRow[] {
  const out: SftRow[] = [];
  let cur: SftRow | null = null;
  for (const r of rows) {
    if (cur && cur.ids.length + r.ids.length <= maxLength) {
      cur.ids.push(...r.ids);
      cur.target.push(...r.target);
      cur.positions.push(...r.positions);
    } else {
      if (cur) out.push(cur);
      cur = { ids: [...r.ids], target: [...r.target], positions: [...r.positions] };
    }
  }
  if (cur) out.push(cur);
  return out;
}

/**
 * Right-padded (B, T) inputs and shifted targets: row b predicts ids[t+1] at position t when token t+1 is
 * a target (IGNORE elsewhere and on padding).
 */
export function collateSft(rows: SftRow[]): SftBatch {
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.ids.length));
  const ids = new Int32Array(B * T);
  const targets = new Int32Array(B * T).fill(IGNORE);
  const attentionMask = new Float32Array(B * T);
  const positions = new Int32Array(B * T);
  let count = 0;
  rows.forEach((r, b) => {
    for (let t = 0; t < r.ids.length; t++) {
      ids[b * T + t] = r.ids[t];
      attentionMask[b * T + t] = 1;
      positions[b * T + t] = r.positions[t];
      if (t + 1 < r.ids.length && r.target[t + 1]) {
        targets[b * T + t] = r.ids[t + 1];
        count++;
      }
    }
  });
  return { ids, targets, attentionMask, positions, B, T, count };
}

export class SftTrainer extends TrainerBase<SftConfig> {
  private readonly rows: SftRow[];
  private readonly evalRows: SftRow[];
  /** what maxLength did to the training data (also in each checkpoint's trainer state, extra.data) */
  readonly lengthReport: SftLengthReport;
  /** micro-batches of the whole run (row indices) and the optimizer steps grouping them */
  private readonly plan: RunPlan;

  constructor(
    readonly policy: CausalLM,
    train: SftExample[],
    options: TrainerOptions & { config?: ConfigInput<SftConfig>; evalData?: SftExample[] } = {},
  ) {
    const config = sftConfig(options.config ?? {});
    super(config, policy, options);
    if (train.length === 0) throw new Error('SftTrainer: no training example');
    const L = Math.min(config.maxLength, policy.maxPositions);
    const limit = L < config.maxLength ? `maxLength ${L} (the model's context; maxLength is ${config.maxLength})` : `maxLength ${L}`;
    const rowsOf = (data: SftExample[], what: string) => {
      const { rows, report } = toRows(data, L, config.completionOnlyLoss);
      // said once, before training: nothing maxLength does to the data goes unsaid
      const lost = [
        report.truncated && `${report.truncated} truncated to ${limit}`,
        report.droppedByLength && `${report.droppedByLength} dropped: no token to learn within ${limit}`,
        report.droppedNoTarget && `${report.droppedNoTarget} dropped: no token to learn at all (lossMask)`,
      ].filter(Boolean);
      if (lost.length) this.progress.log(`warning: ${what}: of ${report.examples} examples, ${lost.join('; ')}`);
      return { rows: config.packing ? pack(rows, L) : rows, report };
    };
    const trained = rowsOf(train, 'training data');
    this.rows = trained.rows;
    this.lengthReport = trained.report;
    this.evalRows = rowsOf(options.evalData ?? [], 'evaluation data').rows;
    if (this.rows.length === 0) {
      const r = trained.report;
      if (r.droppedByLength > 0) {
        throw new Error(
          `SftTrainer: every one of ${r.examples} training examples is dropped by ${limit}: none has a token to learn within it ` +
            `(the shortest example has ${r.shortestExample} tokens, the earliest token to learn is at position ${r.earliestTarget}); raise maxLength or shorten the prompts`,
        );
      }
      throw new Error('SftTrainer: no training example has a token to learn (check lossMask)');
    }
    // data order: one permutation per epoch from the seed, so a resumed run replays the same batches; each
    // micro-batch is a global one (every rank plans the same), of which each rank takes its share
    this.plan = planRun(
      this.rows.length,
      { seed: config.seed, batchSize: this.globalBatch, gradientAccumulationSteps: config.gradientAccumulationSteps, numEpochs: config.numTrainEpochs, maxSteps: config.maxSteps },
      (idx) => idx.reduce((s, i) => s + countTargets(this.rows[i]), 0),
      seededPermutation,
    );
  }

  protected label(): string {
    return 'sft';
  }

  totalSteps(): number {
    return this.plan.steps.length;
  }

  protected override extraState(): Record<string, unknown> {
    return { data: this.lengthReport };
  }

  protected override checkpointFiles(): Record<string, string> {
    return { 'config.json': `${JSON.stringify(this.policy.hfConfig(), null, 2)}\n` };
  }

  /**
   * Mean loss over the batch's trained tokens; with a weight, its gradient (times weight) is accumulated
   * (`last`: the last backward of the optimizer step). The LM head runs on the trained positions only, fused
   * with the loss (no (B·T, V) logits).
   */
  private lossOf(batch: SftBatch, weight: number | null, last = false): number {
    const hidden = this.policy.forward({ ids: batch.ids, B: batch.B, T: batch.T, attentionMask: batch.attentionMask, positions: batch.positions }); // (B·T, C)
    const { rows, targets } = selectRows(batch.targets.map((t) => Number(t !== IGNORE)), batch.targets); // (count) each
    const loss = lmHeadLoss(this.policy, hidden, rows, targets); // mean over trained tokens
    const value = loss.to('cpu').item(); // on a device: the loss scalar's one counted download
    // the weight as the root's gradient (= backward of scale(loss, weight), the same float32 numbers): on a device
    // a host scalar the loss op's backward needs no transfer for
    if (weight !== null) this.backward(loss, Float32Array.of(weight), { lastOfStep: last });
    return value;
  }

  protected trainStep(step: number): Record<string, number> {
    const st = this.plan.steps[step];
    // this rank's share of each micro-batch; each weighted by its tokens over the step's (global) tokens, so that
    // the accumulated (and, over the ranks, summed) gradient is that of the mean over every token of the step
    const batches = st.microBatches
      .map((mb) => this.shard(this.plan.microBatches[mb]))
      .filter((rows) => rows.length > 0)
      .map((rows) => collateSft(rows.map((r) => this.rows[r])))
      .filter((b) => b.count > 0);
    let sum = 0;
    let tokens = 0;
    batches.forEach((batch, i) => {
      sum += batch.count * this.lossOf(batch, batch.count / st.total, i === batches.length - 1);
      tokens += batch.count;
    });
    this.metricWeight = tokens;
    return { loss: tokens > 0 ? sum / tokens : 0, tokens: st.total, epoch: this.plan.epochOfStep[step] };
  }

  /** Token-weighted mean completion loss on held-out data, and its perplexity. */
  override evaluate(): Record<string, number> {
    if (this.evalRows.length === 0) return {};
    return noGrad(() => {
      let sum = 0;
      let count = 0;
      for (const mb of batchIndices(this.evalRows.map((_, i) => i), this.config.perDeviceEvalBatchSize)) {
        const batch = collateSft(mb.map((i) => this.evalRows[i]));
        if (batch.count === 0) continue;
        sum += this.lossOf(batch, null) * batch.count;
        count += batch.count;
      }
      const loss = sum / count;
      return { loss, perplexity: Math.exp(loss), tokens: count };
    });
  }
}
