/**
 * What every bench script reports beside its figures: the median over rounds and the CPU it ran on. Bundled into
 * each script by esbuild (run.mjs, data-parallel.mjs).
 */
import { execFileSync } from 'node:child_process';

/** The median; of an even count, the mean of the middle two (with 2 rounds: their mean, not the better one). */
export function median(a: readonly number[]): number {
  const s = [...a].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** The CPU as lscpu names it: model name, family and model (which FMA and SIMD units the figures ran on). */
export function cpuName(): string {
  try {
    const out = execFileSync('lscpu', { encoding: 'utf8' });
    const get = (k: string) => new RegExp(`^${k}:\\s*(.*)$`, 'm').exec(out)?.[1]?.trim() ?? '?';
    return `${get('Model name')} (family ${get('CPU family')}, model ${get('Model')})`;
  } catch {
    return 'unknown CPU';
  }
}
