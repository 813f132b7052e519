export function copyF32Ref(dst: Float32Array, src: Float32Array, n: number = src.length): void {
  for (let i = 0; i < n; i++) dst[i] = src[i];
}
