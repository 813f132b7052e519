import { native } from '../loader';

/**
 * Rotary position embedding. x and out (B, T, H, D), positions (B·T) int32, invFreq (D/2): angle =
 * pos·invFreq[i] for pair i (invFreq[i] = theta^(-2i/D) for plain RoPE; scaled RoPEs give their own table), and
 * cos, sin multiplied by scale (1 except for YaRN's attention factor). interleaved: pairs (2i, 2i+1) as llama2.c /
 * Meta; otherwise (i, i + D/2) as HF rotate_half. D must be even; out may be x.
 */
export function ropeForward(
  out: Float32Array,
  x: Float32Array,
  positions: Int32Array,
  invFreq: Float32Array,
  B: number,
  T: number,
  H: number,
  D: number,
  scale: number,
  interleaved: boolean,
): void {
  native().ropeForward(out, x, positions, invFreq, B, T, H, D, scale, interleaved);
}

/** The transposed map: dx = scale·Rᵀ·dy (written; dx may be dy). */
export function ropeBackward(
  dx: Float32Array,
  dy: Float32Array,
  positions: Int32Array,
  invFreq: Float32Array,
  B: number,
  T: number,
  H: number,
  D: number,
  scale: number,
  interleaved: boolean,
): void {
  native().ropeBackward(dx, dy, positions, invFreq, B, T, H, D, scale, interleaved);
}

/** Plain RoPE's inverse frequencies theta^(-2i/D), i < D/2, as float32 (what Hugging Face's and Meta's code use). */
export function ropeInvFreq(theta: number, D: number): Float32Array {
  return Float32Array.from({ length: D / 2 }, (_, i) => theta ** ((-2 * i) / D));
}
