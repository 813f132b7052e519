import { native } from '../loader';

// Elementwise ops over the first n elements. Outputs may be their inputs (in place); a partial overlap is a
// RangeError. Gradients of activations are written; gradients of parameters (dbias) accumulate.

/** out = a + b */
export function add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  native().add(out, a, b, n);
}

/** out = a · b */
export function mul(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  native().mul(out, a, b, n);
}

/** da = dy·b, db = dy·a (both written). */
export function mulBackward(
  da: Float32Array,
  db: Float32Array,
  dy: Float32Array,
  a: Float32Array,
  b: Float32Array,
  n: number,
): void {
  native().mulBackward(da, db, dy, a, b, n);
}

/** out = alpha·x */
export function scale(out: Float32Array, x: Float32Array, alpha: number, n: number): void {
  native().scale(out, x, alpha, n);
}

/** dst += src (gradient accumulation). */
export function accumulate(dst: Float32Array, src: Float32Array, n: number): void {
  native().accumulate(dst, src, n);
}

/** out(r,c) = x(r,c) + bias(c); x, out (rows, cols), bias (cols). */
export function addBias(out: Float32Array, x: Float32Array, bias: Float32Array, rows: number, cols: number): void {
  native().addBias(out, x, bias, rows, cols);
}

/** dbias(c) += Σ_r dy(r,c) (accumulates: dbias is a parameter gradient). */
export function addBiasBackward(dbias: Float32Array, dy: Float32Array, rows: number, cols: number): void {
  native().addBiasBackward(dbias, dy, rows, cols);
}

/** Σ x², accumulated in float64: the squared global gradient norm for clipping. */
export function sumSquares(x: Float32Array, n: number): number {
  return native().sumSquares(x, n);
}

/**
 * Σ x² of each array of xs (whole), each summed exactly as sumSquares sums it: a global gradient norm's per-tensor
 * sums in one call (on a device one wait for all of them).
 */
export function sumSquaresMany(xs: Float32Array[]): Float64Array {
  return native().sumSquaresMany(xs);
}
