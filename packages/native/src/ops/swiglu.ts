import { native } from '../loader';

/** out = x·σ(x) (SiLU). out may be x. */
export function siluForward(out: Float32Array, x: Float32Array, n: number): void {
  native().siluForward(out, x, n);
}

/** dx = dy·σ(x)·(1 + x·(1 - σ(x))) (written; dx may be dy or x). */
export function siluBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, n: number): void {
  native().siluBackward(dx, dy, x, n);
}

/** out = silu(gate)·up (Llama's MLP gate). out may be gate or up. */
export function swigluForward(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void {
  native().swigluForward(out, gate, up, n);
}

/** dgate = dy·up·silu'(gate), dup = dy·silu(gate) (both written; each may be one of the inputs). */
export function swigluBackward(
  dgate: Float32Array,
  dup: Float32Array,
  dy: Float32Array,
  gate: Float32Array,
  up: Float32Array,
  n: number,
): void {
  native().swigluBackward(dgate, dup, dy, gate, up, n);
}
