/**
 * Tensor dtypes as they appear in files (safetensors spelling), the typed arrays that hold them in memory, and the
 * half-precision conversions. Half floats (F16, BF16) are widened to float32 on read (exact) and rounded to
 * nearest-even on write, so a value read from an F16/BF16 file writes back to the same bits.
 */

/** A dtype as spelled in a safetensors header. */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** The in-memory array for a tensor: half floats are held as Float32Array. */
export type TensorData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array;

/**
 * One tensor of a state dict. `dtype` is the dtype in the file (what it is written back as); `data` is row-major
 * with `data.length === product(shape)`. For F16 and BF16, `data` is a Float32Array of the widened values.
 */
export interface TensorEntry {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

/** Tensors keyed by Hugging Face names (`model.layers.0.self_attn.q_proj.weight`), in insertion order. */
export type StateDict = Map<string, TensorEntry>;

/** Bytes per element in the file for each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** True when `s` names a dtype we read and write. */
export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

/** The typed-array constructor that holds `dtype` in memory (Float32Array for F16/BF16). */
export function arrayTypeFor(dtype: DType): string {
  switch (dtype) {
    case 'F64':
      return 'Float64Array';
    case 'F32':
    case 'F16':
    case 'BF16':
      return 'Float32Array';
    case 'I64':
      return 'BigInt64Array';
    case 'I32':
      return 'Int32Array';
    case 'I16':
      return 'Int16Array';
    case 'I8':
      return 'Int8Array';
    case 'U8':
    case 'BOOL':
      return 'Uint8Array';
  }
}

/** Number of elements of a shape (1 for a scalar `[]`). Throws on a negative or non-integer dimension. */
export function numel(shape: readonly number[], what = 'shape'): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`${what}: dimension ${String(d)} is not a non-negative integer`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what}: ${JSON.stringify(shape)} has too many elements`);
  return n;
}

// Shared scratch for bit casts between float32 and uint32.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half (binary16) bits -> float32 value. Exact for every input, NaN payloads kept in their top bits. */
export function f16BitsToF32(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0) {
    if (mant === 0) {
      u32[0] = sign;
      return f32[0];
    }
    // Subnormal half: value = mant * 2^-24, exactly representable as a normal float32.
    const v = mant * 5.960464477539063e-8;
    return sign ? -v : v;
  }
  if (exp === 0x1f) {
    u32[0] = sign | 0x7f800000 | (mant << 13);
    return f32[0];
  }
  mant <<= 13;
  u32[0] = sign | ((exp + 112) << 23) | mant;
  return f32[0];
}

/** float32 value -> IEEE half bits, rounded to nearest even; overflow goes to infinity, NaN stays NaN. */
export function f32ToF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    // Inf or NaN; keep NaN a NaN even when its payload sits in the low bits.
    return sign | 0x7c00 | (mant ? (mant >>> 13) | 0x200 : 0);
  }
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    // Subnormal half: shift the mantissa (with its implicit 1) right, round to nearest even.
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and reaches infinity at the top).
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++;
  return sign | r;
}

/** bfloat16 bits -> float32 value (exact: bf16 is the top half of a float32). */
export function bf16BitsToF32(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

/** float32 value -> bfloat16 bits, rounded to nearest even; NaN stays NaN. */
export function f32ToBf16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  const r = x + 0x7fff + ((x >>> 16) & 1);
  return (r >>> 16) & 0xffff;
}
