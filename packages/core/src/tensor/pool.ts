/**
 * A pool of Float32Arrays keyed by length. Op outputs, saved buffers and activation gradients are taken
 * from it during a step and given back after `backward()` (or at the end of a `tidy()` scope), so that a
 * training step with fixed shapes allocates nothing new after the first one and the GC has little to do.
 * The counters tell how much was allocated fresh versus reused (the bench prints them).
 */
const free = new Map<number, Float32Array[]>();

export interface PoolStats {
  /** buffers created with `new Float32Array` because none of that length was free */
  fresh: number;
  freshBytes: number;
  /** buffers handed out again from the free lists */
  reused: number;
  reusedBytes: number;
  /** buffers given back */
  released: number;
  /** bytes currently waiting in the free lists */
  idleBytes: number;
}

let enabled = true;

/**
 * Turns the pool off (every acquire allocates, every release is dropped) or back on: only for measuring
 * what the pool saves (bench/run.mjs compares the GC share of a training step with and without it).
 */
export function setPoolEnabled(on: boolean): void {
  enabled = on;
  if (!on) clearPool();
}

const stats: PoolStats = { fresh: 0, freshBytes: 0, reused: 0, reusedBytes: 0, released: 0, idleBytes: 0 };

/** A buffer of exactly n floats; its contents are arbitrary (not zeroed). */
export function acquireF32(n: number): Float32Array {
  const list = enabled ? free.get(n) : undefined;
  if (list && list.length > 0) {
    stats.reused++;
    stats.reusedBytes += n * 4;
    stats.idleBytes -= n * 4;
    return list.pop()!;
  }
  stats.fresh++;
  stats.freshBytes += n * 4;
  return new Float32Array(n);
}

/** A buffer of n zeros. */
export function acquireZerosF32(n: number): Float32Array {
  return acquireF32(n).fill(0);
}

/** Gives a buffer back; the caller must not touch it again. Views (subarrays) are never pooled. */
export function releaseF32(buf: Float32Array): void {
  if (!enabled) return;
  if (buf.byteOffset !== 0 || buf.length * 4 !== buf.buffer.byteLength) return;
  let list = free.get(buf.length);
  if (!list) free.set(buf.length, (list = []));
  list.push(buf);
  stats.released++;
  stats.idleBytes += buf.length * 4;
}

export function poolStats(): PoolStats {
  return { ...stats };
}

export function resetPoolStats(): void {
  stats.fresh = stats.freshBytes = stats.reused = stats.reusedBytes = stats.released = 0;
}

/** Drops every idle buffer (lets the GC have them). */
export function clearPool(): void {
  free.clear();
  stats.idleBytes = 0;
}
