/**
 * The generation engine on the native decoder: requests (a prompt, a token limit, a seed each) decoded in
 * slots of one KV cache, one decoder step at a time (@rlhf/native NativeDecoder: every layer of every running
 * sequence in one call; logits only for the tokens sampled from).
 *
 *  - Continuous batching: a slot whose request ends (stop token or its limit) takes the next request at once,
 *    its prompt fed in the same step as the others' next tokens; nobody decodes padding.
 *  - Shared prompts: requests with the same prompt (the G completions of GRPO / RLOO / best-of-n) form a group
 *    whose prompt is computed once; the others take its keys and values (a copy of the slot's prefix, or the
 *    slot itself when a member ends and the next member of the group takes over) and sample their first token
 *    from its stored logits. Groups are admitted in order of first appearance, a group's members one after another.
 *  - Long prompts are fed in chunks (at most maxStepTokens tokens per step in all).
 *  - Results in request order. Each request samples from a generator of its own (its seed), and every decoder
 *    result is batch-invariant (the same bits whatever else is in the step: decode.h), so a request's tokens and
 *    log-probs depend on its prompt, seed and the options only: not on the batch, its order, the number of slots
 *    or what shares its prompt.
 */
import { kernels } from '../backend/cpu';
import type { CausalLM } from '../model/common';
import { Rng } from '../util/rng';
import { nativeDecoder } from '../backend/cpu';
import { decoderSpec, type DecodeWeights } from './decoder';
import { sampleTokenFromProbs, type SamplingOptions } from './sampling';

export interface DecodeRequest {
  /** token ids, at least one */
  prompt: number[];
  /** most new tokens (≥ 0) */
  maxNewTokens: number;
  /** the request's sampling seed (uint32) */
  seed: number;
}

export interface EngineOptions extends SamplingOptions {
  /** ids that end a request (kept as its last token) */
  stopTokens: ReadonlySet<number>;
  /** ids at or above this are never sampled (a tokenizer smaller than the model's vocabulary) */
  sampleVocab: number;
  /** most requests decoded at once (cache slots) */
  maxBatchSize: number;
  /** most bytes of KV cache; fewer slots when maxBatchSize would exceed it */
  maxCacheBytes: number;
  /** most tokens per decoder step (decode tokens plus prompt chunks) */
  maxStepTokens: number;
  weights: DecodeWeights;
  /** called with each new token of a request as it is sampled */
  onToken?: (request: number, token: number) => void;
}

/** What an engine run did, for tests (prompts computed once) and benchmarks. */
export interface DecodeStats {
  /** decoder steps */
  steps: number;
  /** cache slots (sequences decoded at once at most) */
  slots: number;
  /** bytes of the KV cache */
  cacheBytes: number;
  /** distinct prompts whose keys and values were computed */
  promptsComputed: number;
  /** prompt tokens fed to the model (each computed prompt once) */
  promptTokens: number;
  /** requests that took a computed prompt instead of computing it */
  promptsShared: number;
  /** tokens sampled (all requests) */
  generatedTokens: number;
  /** tokens fed to the decoder in all (prompt tokens + generated tokens fed back) */
  decodedTokens: number;
  /** wall-clock ms in decoder steps, and in sampling (softmax statistics + draws) */
  stepMs: number;
  sampleMs: number;
}

export interface EngineResult {
  tokens: number[][];
  logprobs: number[][];
  stopped: boolean[];
  stats: DecodeStats;
}

const FREE = 0, PREFILL = 1, DECODE = 2, AWAIT_COPY = 3;

interface Group {
  prompt: number[];
  members: number[];
  /** next member to admit, and members started so far */
  next: number;
  started: number;
  /** 0: prompt not computed, 1: being computed, 2: computed (logits and statistics below) */
  state: 0 | 1 | 2;
  logits: Float32Array | null;
  probs: Float32Array | null;
  lse: number;
  argmax: number;
}

/** Runs the requests on the native decoder (decoderUnsupported(model) must be null). */
export function decodeRequests(model: CausalLM, requests: DecodeRequest[], opts: EngineOptions): EngineResult {
  const n = requests.length;
  const V = model.vocabSize, cols = Math.min(opts.sampleVocab, V);
  const temperature = opts.temperature ?? 1;
  const greedy = temperature === 0;
  const scale = 1 / (greedy ? 1 : temperature);
  const tokens: number[][] = requests.map(() => []);
  const logprobs: number[][] = requests.map(() => []);
  const stopped = new Array<boolean>(n).fill(false);
  const rngs = requests.map((r) => new Rng(r.seed));
  const stats: DecodeStats = { steps: 0, slots: 0, cacheBytes: 0, promptsComputed: 0, promptTokens: 0, promptsShared: 0, generatedTokens: 0, decodedTokens: 0, stepMs: 0, sampleMs: 0 };

  // groups of requests with the same prompt, in order of first appearance; requests with nothing to generate skip
  const groups: Group[] = [];
  const byPrompt = new Map<string, Group>();
  let longest = 0;
  requests.forEach((r, i) => {
    if (r.maxNewTokens === 0) return;
    longest = Math.max(longest, r.prompt.length + r.maxNewTokens);
    const key = r.prompt.join(',');
    let g = byPrompt.get(key);
    if (!g) {
      g = { prompt: r.prompt, members: [], next: 0, started: 0, state: 0, logits: null, probs: null, lse: 0, argmax: 0 };
      byPrompt.set(key, g);
      groups.push(g);
    }
    g.members.push(i);
  });
  const active = groups.reduce((s, g) => s + g.members.length, 0);
  if (active === 0) return { tokens, logprobs, stopped, stats };

  const spec = decoderSpec(model, opts.weights);
  const P = longest;
  const slotBytes = 2 * 4 * spec.layers * spec.kvHeads * spec.headDim * P;
  const S = Math.max(1, Math.min(opts.maxBatchSize, active, Math.floor(opts.maxCacheBytes / slotBytes)));
  const Decoder = nativeDecoder()!;
  const dec = new Decoder(spec, S, P);
  stats.slots = S;
  stats.cacheBytes = dec.cacheBytes;

  const phase = new Uint8Array(S); // FREE, PREFILL, DECODE, AWAIT_COPY
  const slotReq = new Int32Array(S).fill(-1);
  const slotGroup: Array<Group | null> = new Array(S).fill(null);
  const slotNext = new Int32Array(S); // DECODE: the token to feed; PREFILL: prompt tokens fed so far
  const maxTokens = Math.max(opts.maxStepTokens, S);
  const stepTokens = new Int32Array(maxTokens), stepSlots = new Int32Array(maxTokens);
  const outRows = new Int32Array(S), outSlot = new Int32Array(S);
  const logits = new Float32Array(S * V);
  const probs = greedy ? null : new Float32Array(S * V);
  const lse = new Float32Array(S), argmax = new Int32Array(S);
  let gi = 0; // the group being admitted
  let remaining = active;

  /** Records token t (log-prob lp) of request r; true when r is done. */
  const record = (r: number, t: number, lp: number): boolean => {
    tokens[r].push(t);
    logprobs[r].push(lp);
    stats.generatedTokens++;
    opts.onToken?.(r, t);
    if (opts.stopTokens.has(t)) stopped[r] = true;
    const done = stopped[r] || tokens[r].length >= requests[r].maxNewTokens;
    if (done) remaining--;
    return done;
  };
  /** A token for request r from one row of logits and its statistics. */
  const sample = (r: number, row: Float32Array, prow: Float32Array | null, rowLse: number, rowArg: number): [number, number] => {
    if (greedy) return [rowArg, row[rowArg] - rowLse];
    return sampleTokenFromProbs(row.subarray(0, cols), prow!.subarray(0, cols), rowLse, opts, rngs[r]);
  };
  /** Request r starts in slot s whose cache holds its group's prompt: its first token from the group's logits. */
  const startMember = (s: number, r: number, g: Group) => {
    slotReq[s] = r;
    slotGroup[s] = g;
    const t0 = performance.now();
    const [t, lp] = sample(r, g.logits!, g.probs, g.lse, g.argmax);
    stats.sampleMs += performance.now() - t0;
    // the last member started: its prompt's logits are not needed any more
    if (++g.started === g.members.length) g.logits = g.probs = null;
    if (record(r, t, lp)) {
      phase[s] = FREE;
    } else {
      phase[s] = DECODE;
      slotNext[s] = t;
    }
  };
  /** The slot of a computed prompt of g (another member's, running or ended but not reassigned), or −1. */
  const holderOf = (g: Group, not: number): number => {
    for (let s = 0; s < S; s++) if (s !== not && slotGroup[s] === g && phase[s] !== PREFILL && phase[s] !== AWAIT_COPY) return s;
    return -1;
  };
  /** Fills free slots with the next requests, group by group. */
  const admit = () => {
    for (let s = 0; s < S; s++) {
      while (phase[s] === FREE) {
        while (gi < groups.length && groups[gi].next >= groups[gi].members.length) gi++;
        if (gi >= groups.length) return;
        const g = groups[gi];
        const r = g.members[g.next++];
        if (g.state === 0) {
          // compute the prompt here
          g.state = 1;
          dec.truncate(s, 0);
          phase[s] = PREFILL;
          slotReq[s] = r;
          slotGroup[s] = g;
          slotNext[s] = 0;
          stats.promptsComputed++;
        } else if (g.state === 1) {
          // the prompt is being computed in another slot: take it after this step
          phase[s] = AWAIT_COPY;
          slotReq[s] = r;
          slotGroup[s] = g;
        } else {
          const Tp = g.prompt.length;
          if (slotGroup[s] === g) dec.truncate(s, Tp);
          else {
            const h = holderOf(g, s);
            if (h < 0) throw new Error('decodeRequests: no slot holds a computed prompt of a group with members left (a scheduling bug)');
            dec.copyPrefix(s, h, Tp);
          }
          stats.promptsShared++;
          startMember(s, r, g); // may end at once (its limit, or a stop token), freeing s again
        }
      }
    }
  };

  try {
    while (remaining > 0) {
      admit();
      // ---- one step: every decoding slot's token, then prompt chunks up to the token budget ----
      let N = 0, R = 0;
      for (let s = 0; s < S; s++) {
        if (phase[s] !== DECODE) continue;
        stepTokens[N] = slotNext[s];
        stepSlots[N] = s;
        outRows[R] = N;
        outSlot[R++] = s;
        N++;
      }
      for (let s = 0; s < S; s++) {
        if (phase[s] !== PREFILL) continue;
        const prompt = slotGroup[s]!.prompt;
        const room = maxTokens - N;
        if (room <= 0) break;
        const from = slotNext[s], to = Math.min(prompt.length, from + room);
        for (let t = from; t < to; t++) {
          stepTokens[N] = prompt[t];
          stepSlots[N++] = s;
        }
        stats.promptTokens += to - from;
        slotNext[s] = to;
        if (to === prompt.length) {
          outRows[R] = N - 1;
          outSlot[R++] = s;
        }
      }
      if (N === 0) throw new Error('decodeRequests: no token to feed while requests remain (a scheduling bug)');
      const t0 = performance.now();
      dec.step(logits, stepTokens.subarray(0, N), stepSlots.subarray(0, N), outRows.subarray(0, R), N, R);
      const t1 = performance.now();
      stats.stepMs += t1 - t0;
      stats.steps++;
      stats.decodedTokens += N;
      kernels().decodeSoftmax(probs, lse, argmax, logits, R, cols, V, scale);
      for (let j = 0; j < R; j++) {
        const s = outSlot[j];
        const row = logits.subarray(j * V, (j + 1) * V);
        const prow = probs ? probs.subarray(j * V, (j + 1) * V) : null;
        if (phase[s] === PREFILL) {
          // the prompt is computed: keep its last logits for every member of the group
          const g = slotGroup[s]!;
          g.state = 2;
          g.logits = row.slice();
          g.probs = prow ? prow.slice() : null;
          g.lse = lse[j];
          g.argmax = argmax[j];
          const t2 = performance.now();
          stats.sampleMs += t2 - t1;
          startMember(s, slotReq[s], g);
          for (let s2 = 0; s2 < S; s2++) {
            if (phase[s2] !== AWAIT_COPY || slotGroup[s2] !== g) continue;
            dec.copyPrefix(s2, s, g.prompt.length);
            stats.promptsShared++;
            startMember(s2, slotReq[s2], g);
          }
          continue;
        }
        const r = slotReq[s];
        const [t, lp] = sample(r, row, prow, lse[j], argmax[j]);
        if (record(r, t, lp)) phase[s] = FREE;
        else slotNext[s] = t;
      }
      stats.sampleMs += performance.now() - t1;
    }
  } finally {
    dec.dispose();
  }
  return { tokens, logprobs, stopped, stats };
}
