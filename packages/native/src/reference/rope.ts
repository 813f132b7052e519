import type { RefArray } from './elementwise';

function rotate(
  out: RefArray,
  x: RefArray,
  positions: Int32Array,
  invFreq: ArrayLike<number>,
  B: number,
  T: number,
  H: number,
  D: number,
  scale: number,
  interleaved: boolean,
  sign: number,
): void {
  const half = D / 2;
  for (let bt = 0; bt < B * T; bt++) {
    for (let h = 0; h < H; h++) {
      const o = (bt * H + h) * D;
      for (let i = 0; i < half; i++) {
        const a = positions[bt] * invFreq[i];
        const c = scale * Math.cos(a), s = sign * scale * Math.sin(a);
        const j0 = interleaved ? o + 2 * i : o + i;
        const j1 = interleaved ? o + 2 * i + 1 : o + i + half;
        const x0 = x[j0], x1 = x[j1];
        out[j0] = x0 * c - x1 * s;
        out[j1] = x0 * s + x1 * c;
      }
    }
  }
}

/** RoPE in float64: pair i of each head rotated by pos·invFreq[i], cos and sin times scale. */
export function ropeForwardRef(
  out: RefArray,
  x: RefArray,
  positions: Int32Array,
  invFreq: ArrayLike<number>,
  B: number,
  T: number,
  H: number,
  D: number,
  scale: number,
  interleaved: boolean,
): void {
  rotate(out, x, positions, invFreq, B, T, H, D, scale, interleaved, 1);
}

export function ropeBackwardRef(
  dx: RefArray,
  dy: RefArray,
  positions: Int32Array,
  invFreq: ArrayLike<number>,
  B: number,
  T: number,
  H: number,
  D: number,
  scale: number,
  interleaved: boolean,
): void {
  rotate(dx, dy, positions, invFreq, B, T, H, D, scale, interleaved, -1);
}
