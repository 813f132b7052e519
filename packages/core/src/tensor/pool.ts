/**
 * A pool of Float32Arrays keyed by length. Op outputs, saved buffers and activation gradients are taken
 * from it during a step and given back after `backward()` (or at the end of a `tidy()` scope), so that a
 * training step with fixed shapes allocates nothing new after the first one and the GC has little to do.
 * The counters tell how much was allocated fresh versus reused (the bench prints them).
 *
 * The idle buffers are capped (`setPoolLimit`, default 1 GiB): with real data every batch has its own
 * padded length, so every step brings buffers of new lengths, and an uncapped pool kept them all (a 124M
 * GPT-2 at batch 2, lengths up to 256: +0.8 GB per step). Past the cap the lengths used least recently go
 * first (the Map keeps lengths in order of last use).
 */
const free = new Map<number, Float32Array[]>();
let limitBytes = 2 ** 30;

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
  /** idle buffers dropped to stay under the limit (or larger than it) */
  evicted: number;
  evictedBytes: number;
  /**
   * bytes handed out and not given back yet (a buffer the GC takes without a release stays counted): the
   * activations, saved buffers and gradients alive now
   */
  outBytes: number;
  /** the most outBytes since the last resetPoolStats(): the peak of a step's pooled memory */
  peakOutBytes: number;
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

const stats: PoolStats = { fresh: 0, freshBytes: 0, reused: 0, reusedBytes: 0, released: 0, idleBytes: 0, evicted: 0, evictedBytes: 0, outBytes: 0, peakOutBytes: 0 };

/**
 * The most bytes of idle buffers the pool keeps (default 1 GiB); 0 keeps none. Lowering it drops the buffers
 * used least recently at once.
 */
export function setPoolLimit(bytes: number): void {
  if (!(bytes >= 0) || !Number.isFinite(bytes)) throw new RangeError(`setPoolLimit: bytes must be a finite number >= 0, got ${bytes}`);
  limitBytes = bytes;
  trim();
}

export function poolLimit(): number {
  return limitBytes;
}

/** Drops idle buffers of the lengths used least recently until the idle bytes fit the limit. */
function trim(): void {
  for (const [n, list] of free) {
    if (stats.idleBytes <= limitBytes) return;
    while (list.length > 0 && stats.idleBytes > limitBytes) {
      list.pop();
      stats.idleBytes -= n * 4;
      stats.evicted++;
      stats.evictedBytes += n * 4;
    }
    if (list.length === 0) free.delete(n);
  }
}

/** Marks length n as just used: it moves to the end of the Map's order (the last to be trimmed). */
function touch(n: number, list: Float32Array[]): void {
  free.delete(n);
  free.set(n, list);
}

/** A buffer of exactly n floats; its contents are arbitrary (not zeroed). */
export function acquireF32(n: number): Float32Array {
  stats.outBytes += n * 4;
  if (stats.outBytes > stats.peakOutBytes) stats.peakOutBytes = stats.outBytes;
  const list = enabled ? free.get(n) : undefined;
  if (list && list.length > 0) {
    stats.reused++;
    stats.reusedBytes += n * 4;
    stats.idleBytes -= n * 4;
    touch(n, list);
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
  if (buf.byteOffset !== 0 || buf.length * 4 !== buf.buffer.byteLength) return;
  stats.outBytes -= buf.length * 4;
  if (!enabled) return;
  stats.released++;
  if (buf.length * 4 > limitBytes) {
    stats.evicted++;
    stats.evictedBytes += buf.length * 4;
    return;
  }
  const list = free.get(buf.length) ?? [];
  touch(buf.length, list);
  list.push(buf);
  stats.idleBytes += buf.length * 4;
  if (stats.idleBytes > limitBytes) trim();
}

export function poolStats(): PoolStats {
  return { ...stats };
}

export function resetPoolStats(): void {
  stats.fresh = stats.freshBytes = stats.reused = stats.reusedBytes = stats.released = stats.evicted = stats.evictedBytes = 0;
  stats.peakOutBytes = stats.outBytes;
}

/** Drops every idle buffer (lets the GC have them). */
export function clearPool(): void {
  free.clear();
  stats.idleBytes = 0;
}
