/**
 * Heads that sit on either architecture's final hidden states (B·T, C):
 *  - ValueHead: a scalar per token (PPO's critic), TRL's names `v_head.summary.weight` (1, C) and `.bias` (1);
 *  - RewardHead: a scalar per sequence, read at the last real token of each row (left or right padding),
 *    HF sequence-classification's name `score.weight` (1, C), no bias.
 * And the two pairings the trainers use: a policy with a value head, and a reward model.
 */
import { fillF32 } from '../backend/backends';
import type { Device } from '../backend/device';
import type { StateDict } from '../io/dtypes';
import { gatherRows, linear, reshape } from '../tensor/ops';
import { Tensor } from '../tensor/tensor';
import { Rng } from '../util/rng';
import { lastTokenIndex, type CausalLM, type ModelInput } from './common';
import { copyParameters, Module } from './module';

export class ValueHead extends Module {
  constructor(readonly hiddenSize: number, opts: { seed?: number } = {}) {
    super();
    const rng = new Rng(opts.seed ?? 1);
    this.addParam('v_head.summary.weight', Tensor.randn([1, hiddenSize], rng, 1 / Math.sqrt(hiddenSize))); // (1, C)
    this.addParam('v_head.summary.bias', Tensor.zeros([1])); // (1)
  }

  /** values (N) of hidden (N, C). */
  forward(hidden: Tensor): Tensor {
    const v = linear(hidden, this.param('v_head.summary.weight'), this.param('v_head.summary.bias')); // (N, 1)
    return reshape(v, [v.size]); // (N)
  }

  /** Sets the weight and the bias to 0: every value starts at 0 (PPO's valueHeadInit 'zeros'). */
  zero(): void {
    for (const [, p] of this.namedParameters()) fillF32(p.device, p.buf, 0, p.size); // on a device by its fill kernel
  }

  clone(): ValueHead {
    const h = new ValueHead(this.hiddenSize);
    copyParameters(h, this);
    return h;
  }
}

export class RewardHead extends Module {
  constructor(readonly hiddenSize: number, opts: { seed?: number } = {}) {
    super();
    const rng = new Rng(opts.seed ?? 2);
    this.addParam('score.weight', Tensor.randn([1, hiddenSize], rng, 1 / Math.sqrt(hiddenSize))); // (1, C)
  }

  /** rewards (B) from hidden (B·T, C): the score of each row's last real token. */
  forward(hidden: Tensor, B: number, T: number, attentionMask?: ArrayLike<number>): Tensor {
    const idx = lastTokenIndex(attentionMask, B, T);
    for (let b = 0; b < B; b++) if (idx[b] < 0) throw new RangeError(`RewardHead: row ${b} is all padding`);
    const last = gatherRows(hidden, idx); // (B, C)
    return reshape(linear(last, this.param('score.weight')), [B]); // (B)
  }

  clone(): RewardHead {
    const h = new RewardHead(this.hiddenSize);
    copyParameters(h, this);
    return h;
  }
}

function mergeState(a: StateDict, b: StateDict): StateDict {
  const out: StateDict = new Map(a);
  for (const [k, v] of b) out.set(k, v);
  return out;
}

function split(sd: StateDict, headNames: string[]): [StateDict, StateDict] {
  const body: StateDict = new Map(), head: StateDict = new Map();
  for (const [k, v] of sd) (headNames.includes(k) ? head : body).set(k, v);
  return [body, head];
}

/** A causal LM with a value head (PPO policy + critic sharing the trunk). */
export class CausalLMWithValueHead {
  constructor(
    readonly model: CausalLM,
    readonly valueHead: ValueHead = new ValueHead(model.hiddenSize),
  ) {}

  /** logits (B·T, V) and values (B·T) for one forward of the trunk. */
  forward(input: ModelInput): { hidden: Tensor; logits: Tensor; values: Tensor } {
    const hidden = this.model.forward(input);
    return { hidden, logits: this.model.logits(hidden), values: this.valueHead.forward(hidden) };
  }

  namedParameters(): Array<[string, Tensor]> {
    return [...this.model.namedParameters(), ...this.valueHead.namedParameters()];
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  zeroGrad(): void {
    this.model.zeroGrad();
    this.valueHead.zeroGrad();
  }
  stateDict(): StateDict {
    return mergeState(this.model.stateDict(), this.valueHead.stateDict());
  }
  loadStateDict(sd: StateDict, opts: { strict?: boolean } = {}): void {
    const [body, head] = split(sd, this.valueHead.namedParameters().map(([n]) => n));
    // Each part's load is all or nothing; the head (a few floats) is checked on a copy first, so that a bad
    // head cannot leave the trunk already overwritten.
    this.valueHead.clone().loadStateDict(head, opts);
    this.model.loadStateDict(body, opts);
    this.valueHead.loadStateDict(head, opts);
  }
  /** Moves the trunk and the head to `device` (see Module.to). */
  to(device: Device): this {
    this.model.to(device);
    this.valueHead.to(device);
    return this;
  }
  clone(): CausalLMWithValueHead {
    return new CausalLMWithValueHead(this.model.clone(), this.valueHead.clone());
  }
}

/** A reward model: a causal LM trunk and a reward head (the LM head is not used). */
export class RewardModel {
  constructor(
    readonly model: CausalLM,
    readonly head: RewardHead = new RewardHead(model.hiddenSize),
  ) {}

  /** one reward per row (B). */
  forward(input: ModelInput): Tensor {
    const hidden = this.model.forward(input);
    return this.head.forward(hidden, input.B, input.T, input.attentionMask);
  }

  /** The trunk's parameters without the unused LM head (for GPT-2 the tied embedding stays: it is the input table). */
  namedParameters(): Array<[string, Tensor]> {
    return [...this.model.namedParameters().filter(([n]) => n !== 'lm_head.weight'), ...this.head.namedParameters()];
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  zeroGrad(): void {
    this.model.zeroGrad();
    this.head.zeroGrad();
  }
  stateDict(): StateDict {
    return mergeState(this.model.stateDict(), this.head.stateDict());
  }
  loadStateDict(sd: StateDict, opts: { strict?: boolean } = {}): void {
    const [body, head] = split(sd, this.head.namedParameters().map(([n]) => n));
    this.head.clone().loadStateDict(head, opts); // checked first, as in CausalLMWithValueHead
    this.model.loadStateDict(body, opts);
    this.head.loadStateDict(head, opts);
  }
  /** Moves the trunk and the head to `device` (see Module.to). */
  to(device: Device): this {
    this.model.to(device);
    this.head.to(device);
    return this;
  }
  clone(): RewardModel {
    return new RewardModel(this.model.clone(), this.head.clone());
  }
}
