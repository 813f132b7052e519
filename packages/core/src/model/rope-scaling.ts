/**
 * Rotary embeddings as config.json describes them: `rope_theta` and `rope_scaling` (transformers 4) or
 * `rope_parameters` (transformers 5, which moves rope_theta inside), turned into the inverse frequency of each
 * pair and the factor on cos/sin that the rope op takes (tensor/ops.ts RopeFrequencies).
 *
 * Implemented, with the formulas of transformers' modeling_rope_utils.py (5.x):
 *  - default: invFreq[i] = theta^(-2i/D);
 *  - linear: invFreq / factor;
 *  - llama3 (Llama 3.1 / 3.2): pairs with wavelength 2π/invFreq above original/low_freq_factor divided by factor,
 *    below original/high_freq_factor kept, smoothly interpolated between;
 *  - yarn: the YaRN blend of invFreq and invFreq / factor over a ramp of pairs set by beta_fast / beta_slow, and
 *    its attention factor (attention_factor, or from mscale / mscale_all_dim, or 0.1·ln(factor) + 1) on cos and
 *    sin. As transformers 5: `factor` is taken as given and `original_max_position_embeddings` defaults to
 *    max_position_embeddings (transformers 4.5x replaced factor by max_position_embeddings / original when both
 *    were given);
 *  - dynamic (NTK): transformers recomputes the frequencies only for a sequence longer than
 *    max_position_embeddings (and keeps state between calls); within it they are the default ones, which is what
 *    we compute, and the model refuses positions beyond it (as for every family).
 * Refused, naming the key: any other type (longrope, ...), a key a type does not take, partial_rotary_factor
 * other than 1, per-layer-type rope_parameters.
 */
import type { RopeFrequencies } from '../tensor/ops';
import { showValue, type HfConfigReader } from './hf-config';

export type RopeType = 'default' | 'linear' | 'dynamic' | 'yarn' | 'llama3';

/** RoPE of a model: its base and its scaling (the scaling object of config.json, checked; null for none). */
export interface RopeSpec {
  theta: number;
  /** the checked rope_scaling object, with rope_type spelled out (written back to config.json as it is) */
  scaling: RopeScaling | null;
}

export interface RopeScaling {
  rope_type: Exclude<RopeType, 'default'>;
  factor: number;
  original_max_position_embeddings?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  attention_factor?: number;
  beta_fast?: number;
  beta_slow?: number;
  mscale?: number;
  mscale_all_dim?: number;
  truncate?: boolean;
}

/** The keys each type takes besides rope_type / type / rope_theta (transformers 5's _validate_*_rope_parameters). */
const TYPE_KEYS: Record<RopeType, { required: string[]; optional: string[] }> = {
  default: { required: [], optional: [] },
  linear: { required: ['factor'], optional: [] },
  dynamic: { required: ['factor'], optional: ['original_max_position_embeddings'] },
  yarn: {
    required: ['factor'],
    optional: ['original_max_position_embeddings', 'attention_factor', 'beta_fast', 'beta_slow', 'mscale', 'mscale_all_dim', 'truncate'],
  },
  llama3: { required: ['factor', 'original_max_position_embeddings', 'low_freq_factor', 'high_freq_factor'], optional: [] },
};

/**
 * Reads rope_theta and rope_scaling / rope_parameters (and refuses partial_rotary_factor ≠ 1) with reader `r`;
 * `defaultTheta` is the family's default base (SmolLM3's is 2e6).
 */
export function readRope(r: HfConfigReader, defaultTheta: number): RopeSpec {
  const legacy = r.get('rope_scaling');
  const params = r.get('rope_parameters');
  if (legacy != null && params != null) r.fail('has both rope_scaling and rope_parameters: give one');
  const block = (legacy ?? params ?? null) as Record<string, unknown> | null;
  const key = legacy != null ? 'rope_scaling' : 'rope_parameters';
  if (block !== null && (typeof block !== 'object' || Array.isArray(block))) r.fail(`${key} must be an object or null, got ${showValue(block)}`);
  if (block && ['full_attention', 'sliding_attention'].some((k) => k in block)) r.refuse(key, 'RoPE per layer type is not implemented');
  const partial = r.num('partial_rotary_factor', 1);
  if (partial !== 1) r.refuse('partial_rotary_factor', 'RoPE on part of each head is not implemented');
  let theta = r.positive('rope_theta', defaultTheta);
  if (!block) return { theta, scaling: null };

  const where = (k: string) => `${key}.${k}`;
  const typeA = block.rope_type, typeB = block.type;
  if (typeA !== undefined && typeB !== undefined && typeA !== typeB) r.fail(`${where('rope_type')} ${showValue(typeA)} and ${where('type')} ${showValue(typeB)} disagree`);
  const type = (typeA ?? typeB ?? 'default') as string;
  if (!(type in TYPE_KEYS)) {
    r.fail(`${where('rope_type')} = ${showValue(type)} is not supported: implemented are ${Object.keys(TYPE_KEYS).join(', ')} (an unknown scaling would compute other angles)`);
  }
  if (block.rope_theta !== undefined) {
    const t = block.rope_theta;
    if (!(typeof t === 'number' && t > 0 && Number.isFinite(t))) r.fail(`${where('rope_theta')} must be a positive number, got ${showValue(t)}`);
    if (r.has('rope_theta') && t !== theta) r.fail(`rope_theta ${theta} and ${where('rope_theta')} ${t} disagree`);
    theta = t as number;
  }
  if (block.partial_rotary_factor !== undefined && block.partial_rotary_factor !== 1) {
    r.fail(`${where('partial_rotary_factor')} = ${showValue(block.partial_rotary_factor)} is not supported: RoPE on part of each head is not implemented`);
  }
  const { required, optional } = TYPE_KEYS[type as RopeType];
  for (const k of Object.keys(block)) {
    if (['rope_type', 'type', 'rope_theta', 'partial_rotary_factor'].includes(k) || required.includes(k) || optional.includes(k)) continue;
    r.fail(`${where(k)} = ${showValue(block[k])} is not a key of rope type ${type}: it is not implemented (takes ${[...required, ...optional].join(', ') || 'nothing more'})`);
  }
  if (type === 'default') return { theta, scaling: null };
  for (const k of required) if (block[k] === undefined || block[k] === null) r.fail(`${where(k)} is missing (rope type ${type} needs ${required.join(', ')})`);
  const positiveAt = (k: string): number | undefined => {
    const v = block[k];
    if (v === undefined || v === null) return undefined;
    if (!(typeof v === 'number' && v > 0 && Number.isFinite(v))) r.fail(`${where(k)} must be a positive number, got ${showValue(v)}`);
    return v as number;
  };
  const scaling: RopeScaling = { rope_type: type as RopeScaling['rope_type'], factor: positiveAt('factor')! };
  for (const k of [...required, ...optional]) {
    if (k === 'factor' || block[k] === undefined || block[k] === null) continue;
    if (k === 'truncate') {
      if (typeof block[k] !== 'boolean') r.fail(`${where(k)} must be true or false, got ${showValue(block[k])}`);
      scaling.truncate = block[k] as boolean;
    } else if (k === 'mscale' || k === 'mscale_all_dim') {
      const v = block[k];
      if (!(typeof v === 'number' && v >= 0 && Number.isFinite(v))) r.fail(`${where(k)} must be a number ≥ 0, got ${showValue(v)}`);
      (scaling as unknown as Record<string, number>)[k] = v as number;
    } else {
      (scaling as unknown as Record<string, number>)[k] = positiveAt(k)!;
    }
  }
  if (type === 'llama3' && !(scaling.high_freq_factor! > scaling.low_freq_factor!)) {
    r.fail(`${where('high_freq_factor')} ${scaling.high_freq_factor} must exceed ${where('low_freq_factor')} ${scaling.low_freq_factor}`);
  }
  return { theta, scaling };
}

/** The config.json keys of a RopeSpec (transformers 4 spelling, which 4.x and 5.x both read). */
export function ropeToHf(spec: RopeSpec): Record<string, unknown> {
  return { rope_theta: spec.theta, rope_scaling: spec.scaling ? { ...spec.scaling } : null };
}

/** Plain RoPE: theta^(-2i/D) for i < D/2, formed in float64 and rounded to float32 (as torch computes it in float32). */
export function defaultInvFreq(theta: number, D: number): Float64Array {
  return Float64Array.from({ length: D / 2 }, (_, i) => 1 / theta ** ((2 * i) / D));
}

/**
 * The inverse frequencies (D/2) and the cos/sin factor of a RopeSpec for heads of D, in a model whose
 * max_position_embeddings is maxPositions. Formulas: the file comment.
 */
export function ropeFrequencies(spec: RopeSpec, D: number, maxPositions: number): RopeFrequencies {
  const base = defaultInvFreq(spec.theta, D);
  const s = spec.scaling;
  const f32 = (a: Float64Array) => Float32Array.from(a);
  if (!s || s.rope_type === 'dynamic') return { invFreq: f32(base), scale: 1 };
  if (s.rope_type === 'linear') return { invFreq: f32(base.map((f) => f / s.factor)), scale: 1 };
  if (s.rope_type === 'llama3') {
    const orig = s.original_max_position_embeddings!, lo = s.low_freq_factor!, hi = s.high_freq_factor!;
    const lowFreqWavelen = orig / lo, highFreqWavelen = orig / hi;
    const out = base.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highFreqWavelen) return f; // high frequencies: kept
      if (wavelen > lowFreqWavelen) return f / s.factor; // low frequencies: interpolated
      const smooth = (orig / wavelen - lo) / (hi - lo);
      return (1 - smooth) * (f / s.factor) + smooth * f;
    });
    return { invFreq: f32(out), scale: 1 };
  }
  // yarn
  const factor = s.factor;
  const orig = s.original_max_position_embeddings ?? maxPositions;
  const mscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  const attention = s.attention_factor ?? (s.mscale && s.mscale_all_dim ? mscale(factor, s.mscale) / mscale(factor, s.mscale_all_dim) : mscale(factor));
  const betaFast = s.beta_fast ?? 32, betaSlow = s.beta_slow ?? 1;
  // the pair index whose wavelength makes `rotations` turns over the original context
  const correctionDim = (rotations: number) => (D * Math.log(orig / (rotations * 2 * Math.PI))) / (2 * Math.log(spec.theta));
  let low = correctionDim(betaFast), high = correctionDim(betaSlow);
  if (s.truncate ?? true) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, D - 1);
  if (low === high) high += 0.001; // as transformers: no division by zero
  const out = base.map((f, i) => {
    const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
    const extrapolation = 1 - ramp; // 1: keep the pair's frequency; 0: interpolate it (divide by factor)
    return (f / factor) * (1 - extrapolation) + f * extrapolation;
  });
  return { invFreq: f32(out), scale: attention };
}
