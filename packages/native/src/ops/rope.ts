import { native } from '../loader';

/**
 * Rotary position embedding. x and out (B, T, H, D), positions (B·T) int32; angle = pos·theta^(-2i/D) for
 * pair i. interleaved: pairs (2i, 2i+1) as llama2.c / Meta; otherwise (i, i + D/2) as HF rotate_half.
 * D must be even; out may be x.
 */
export function ropeForward(
  out: Float32Array,
  x: Float32Array,
  positions: Int32Array,
  B: number,
  T: number,
  H: number,
  D: number,
  theta: number,
  interleaved: boolean,
): void {
  native().ropeForward(out, x, positions, B, T, H, D, theta, interleaved);
}

/** The inverse rotation: dx = Rᵀ·dy (written; dx may be dy). */
export function ropeBackward(
  dx: Float32Array,
  dy: Float32Array,
  positions: Int32Array,
  B: number,
  T: number,
  H: number,
  D: number,
  theta: number,
  interleaved: boolean,
): void {
  native().ropeBackward(dx, dy, positions, B, T, H, D, theta, interleaved);
}
