/**
 * Arrays the references accept: Float32Array as the kernels do, or Float64Array so that tests can take
 * finite differences of a reference forward in float64.
 */
export type RefArray = Float32Array | Float64Array;

export function addRef(out: RefArray, a: RefArray, b: RefArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}

export function mulRef(out: RefArray, a: RefArray, b: RefArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
}

export function mulBackwardRef(da: RefArray, db: RefArray, dy: RefArray, a: RefArray, b: RefArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = dy[i], x = a[i], y = b[i];
    da[i] = g * y;
    db[i] = g * x;
  }
}

export function scaleRef(out: RefArray, x: RefArray, alpha: number, n: number): void {
  for (let i = 0; i < n; i++) out[i] = alpha * x[i];
}

export function accumulateRef(dst: RefArray, src: RefArray, n: number): void {
  for (let i = 0; i < n; i++) dst[i] += src[i];
}

export function addBiasRef(out: RefArray, x: RefArray, bias: RefArray, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * cols + c] + bias[c];
}

export function addBiasBackwardRef(dbias: RefArray, dy: RefArray, rows: number, cols: number): void {
  for (let c = 0; c < cols; c++) {
    let s = 0;
    for (let r = 0; r < rows; r++) s += dy[r * cols + c];
    dbias[c] += s;
  }
}

export function sumSquaresRef(x: RefArray, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * x[i];
  return s;
}

export function sumSquaresManyRef(xs: RefArray[]): Float64Array {
  return Float64Array.from(xs, (x) => sumSquaresRef(x, x.length));
}
