import type { RefArray } from './elementwise';

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export function siluForwardRef(out: RefArray, x: RefArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = x[i] * sigmoid(x[i]);
}

export function siluBackwardRef(dx: RefArray, dy: RefArray, x: RefArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const s = sigmoid(x[i]);
    dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
  }
}

export function swigluForwardRef(out: RefArray, gate: RefArray, up: RefArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

export function swigluBackwardRef(dgate: RefArray, dup: RefArray, dy: RefArray, gate: RefArray, up: RefArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i], u = up[i], d = dy[i];
    const s = sigmoid(g);
    dgate[i] = d * u * s * (1 + g * (1 - s));
    dup[i] = d * g * s;
  }
}
