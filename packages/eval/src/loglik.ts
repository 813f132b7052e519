/**
 * Log-likelihood of continuations given a shared context, for multiple-choice benchmarks (every choice of a
 * question shares the question). Two ways to run it, with the same numbers:
 *  - shared prefix (default): the context runs once (batch 1) into a KV cache; its keys/values are copied
 *    into one row per choice and only the choices' own tokens run, batched and right-padded;
 *  - plain: each row is context + choice, right-padded, one batched forward without a cache.
 * Both count the token positions the model ran (padding included), so the saving can be measured.
 * Log-probs are computed in float64 from the float32 logits (log-sum-exp with the max subtracted).
 */
import { noGrad, ops, tidy, type CausalLM } from '@rlhf/core';

const { gatherRows } = ops;

export interface ContinuationScores {
  /** total log-likelihood of each continuation's tokens */
  logliks: number[];
  /** tokens in each continuation */
  lengths: number[];
  /** whether each continuation's tokens were all the model's greedy choice */
  greedy: boolean[];
  /** token positions run through the model for this request (padding included) */
  positionsRun: number;
  /** context tokens dropped from the left to fit the model's window */
  truncated: number;
}

export interface ScoreOptions {
  /** share the context through the KV cache (default true) */
  sharePrefix?: boolean;
  /**
   * log-probs of softmax(logits / temperature) (default 1): the distribution that sampling at this
   * temperature draws from, as a PPO trainer scores its own samples
   */
  temperature?: number;
}

/** log p of each target given each row of logits (divided by the temperature), plus whether it was the argmax. */
function logProbOf(logits: Float32Array, row: number, V: number, target: number, invT: number): [number, boolean] {
  const o = row * V;
  let max = -Infinity, arg = 0;
  for (let v = 0; v < V; v++) if (logits[o + v] > max) { max = logits[o + v]; arg = v; }
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp((logits[o + v] - max) * invT);
  return [(logits[o + target] - max) * invT - Math.log(s), arg === target];
}

/**
 * Scores each continuation (token ids, non-empty) after the context (non-empty, normally starting with BOS).
 * When context + the longest continuation exceed the model's window, the context loses tokens from the
 * left (after its first token, which is kept as the BOS anchor).
 */
export function scoreContinuations(model: CausalLM, context: number[], continuations: number[][], opts: ScoreOptions = {}): ContinuationScores {
  if (!context.length) throw new RangeError('scoreContinuations: the context is empty (start it with BOS)');
  if (!continuations.length) throw new RangeError('scoreContinuations: no continuations to score');
  continuations.forEach((c, i) => {
    if (!c.length) throw new RangeError(`scoreContinuations: continuation ${i} has no tokens`);
  });
  const maxCont = Math.max(...continuations.map((c) => c.length));
  if (maxCont + 1 > model.maxPositions) throw new RangeError(`scoreContinuations: a continuation of ${maxCont} tokens does not fit the model's ${model.maxPositions} positions`);
  let ctx = context;
  let truncated = 0;
  const room = model.maxPositions - (maxCont - 1); // the last continuation token is never fed
  if (ctx.length > room) {
    truncated = ctx.length - room;
    ctx = [ctx[0], ...ctx.slice(1 + truncated)];
  }
  const temperature = opts.temperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new RangeError(`scoreContinuations: temperature must be a positive finite number, got ${temperature}`);
  const invT = 1 / temperature;
  const r = opts.sharePrefix === false ? scorePlain(model, ctx, continuations, invT) : scoreShared(model, ctx, continuations, invT);
  return { ...r, lengths: continuations.map((c) => c.length), truncated };
}

function scoreShared(model: CausalLM, ctx: number[], conts: number[][], invT: number) {
  const V = model.vocabSize, n = conts.length, Tc = ctx.length;
  const maxCont = Math.max(...conts.map((c) => c.length));
  return noGrad(() =>
    tidy(() => {
      const one = model.newCache(1, Tc + maxCont);
      const h0 = model.forward({ ids: Int32Array.from(ctx), B: 1, T: Tc, cache: one }); // (Tc, C)
      const first = model.logits(gatherRows(h0, Int32Array.of(Tc - 1))).to('cpu').data; // (1, V): predicts each first token (a device's: one download)
      const logliks = new Array<number>(n).fill(0);
      const greedy = new Array<boolean>(n).fill(true);
      conts.forEach((c, i) => {
        const [lp, g] = logProbOf(first, 0, V, c[0], invT);
        logliks[i] += lp;
        greedy[i] &&= g;
      });
      let positionsRun = Tc;
      const T = maxCont - 1; // feed every continuation token but the last
      if (T > 0) {
        // the context's keys/values in each of n rows
        const cache = model.newCache(n, Tc + maxCont);
        cache.repeatRow(one);
        const ids = new Int32Array(n * T), mask = new Uint8Array(n * T);
        conts.forEach((c, b) => {
          for (let t = 0; t < c.length - 1; t++) {
            ids[b * T + t] = c[t];
            mask[b * T + t] = 1;
          }
        });
        const h = model.forward({ ids, B: n, T, attentionMask: mask, cache }); // (n·T, C)
        const logits = model.logits(h).to('cpu').data; // (n·T, V)
        positionsRun += n * T;
        conts.forEach((c, b) => {
          for (let t = 1; t < c.length; t++) {
            const [lp, g] = logProbOf(logits, b * T + t - 1, V, c[t], invT);
            logliks[b] += lp;
            greedy[b] &&= g;
          }
        });
      }
      return { logliks, greedy, positionsRun };
    }),
  );
}

function scorePlain(model: CausalLM, ctx: number[], conts: number[][], invT: number) {
  const V = model.vocabSize, n = conts.length, Tc = ctx.length;
  const maxCont = Math.max(...conts.map((c) => c.length));
  const T = Tc + maxCont - 1;
  return noGrad(() =>
    tidy(() => {
      const ids = new Int32Array(n * T), mask = new Uint8Array(n * T);
      conts.forEach((c, b) => {
        ids.set(ctx, b * T);
        ids.set(c.slice(0, -1), b * T + Tc);
        mask.fill(1, b * T, b * T + Tc + c.length - 1);
      });
      const h = model.forward({ ids, B: n, T, attentionMask: mask }); // (n·T, C)
      // logits only at the rows that predict a continuation token (the context rows would be n·Tc·V floats)
      const rows: number[] = [];
      conts.forEach((c, b) => {
        for (let t = 0; t < c.length; t++) rows.push(b * T + Tc - 1 + t);
      });
      const logits = model.logits(gatherRows(h, Int32Array.from(rows))).to('cpu').data; // (rows, V)
      const logliks = new Array<number>(n).fill(0);
      const greedy = new Array<boolean>(n).fill(true);
      let r = 0;
      conts.forEach((c, b) => {
        for (let t = 0; t < c.length; t++) {
          const [lp, g] = logProbOf(logits, r++, V, c[t], invT);
          logliks[b] += lp;
          greedy[b] &&= g;
        }
      });
      return { logliks, greedy, positionsRun: n * T };
    }),
  );
}
