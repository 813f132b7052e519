export function copyF32Ref(dst: Float32Array, src: Float32Array, n: number = src.length): void {
  for (let i = 0; i < n; i++) dst[i] = src[i];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> bf16 bits, round to nearest even (NaN stays a quiet NaN). */
export function bf16BitsRef(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bf16 bits -> float32 value (exact). */
export function bf16ValueRef(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

export function castF32ToBf16Ref(dst: Uint16Array, src: Float32Array, n: number = src.length): void {
  for (let i = 0; i < n; i++) dst[i] = bf16BitsRef(src[i]);
}

export function castBf16ToF32Ref(dst: Float32Array, src: Uint16Array, n: number = src.length): void {
  for (let i = 0; i < n; i++) dst[i] = bf16ValueRef(src[i]);
}
