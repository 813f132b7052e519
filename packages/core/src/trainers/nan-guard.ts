/**
 * The NaN/Inf guard. Before each optimizer update the trainer asks `isFinite` of the loss and of the global
 * gradient norm, and after it whether the weights and moments are still finite (an update can overflow
 * float32 with a finite loss and gradient: a learning rate of 1e39); a non-finite step is not applied (or is
 * undone): the guard copies the last good parameters and optimizer moments back (a NaN that already reached
 * the weights through an earlier step is undone too), the trainer skips the batch, and after `maxConsecutive` bad steps in a row the run stops with an error that says so
 * (a diverged run must not loop forever).
 *
 * The snapshot is a copy of every registered buffer, refreshed every `snapshotEvery` good steps (12 bytes a
 * parameter: weights and two moments), and `snapshotEvery` trades memory traffic against lost steps.
 * snapshotEvery 0 (the trainers' default, nanGuardSnapshotSteps) keeps no copy: the trainer then tries each
 * update on copies before applying it (AdamW.stepIfFinite), so an update that would overflow is never applied,
 * and a bad loss or gradient is skipped as before; nothing is restored, and a run whose state itself turned
 * non-finite (from outside the update) stops after maxConsecutive bad steps (resume it from its last
 * checkpoint).
 */
import { kernelsFor } from '../backend/backends';
import { backendFor, isHost, type Device, type DeviceBuffer, type F32Buf } from '../backend/device';
export class NonFiniteError extends Error {
  override name = 'NonFiniteError';
}

/** True when every element is finite. */
export function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    // x − x is NaN for NaN and ±Infinity, 0 otherwise: one test for both cases
    if (x - x !== 0) return false;
  }
  return true;
}

export class NanGuard {
  private buffers: F32Buf[] = [];
  private snapshot: F32Buf[] = [];
  /** where the registered buffers live: the snapshot is kept there, copied by its copy kernel */
  private device: Device = 'cpu';
  private goodSinceSnapshot = 0;
  private consecutiveBad = 0;
  /** steps skipped over the whole run */
  skipped = 0;
  /** the step of the current snapshot */
  snapshotStep = -1;

  constructor(
    private readonly options: { maxConsecutive?: number; snapshotEvery?: number } = {},
  ) {}

  /**
   * The buffers to protect (parameters, optimizer moments; typed arrays, or buffers of `device`, where the snapshot
   * is then kept); snapshots them now (unless snapshotEvery is 0).
   */
  register(buffers: F32Buf[], step = 0, device: Device = 'cpu'): void {
    if (device !== this.device) this.dropSnapshot();
    this.buffers = buffers;
    this.device = device;
    if (this.keepsSnapshot) this.take(step);
  }

  private dropSnapshot(): void {
    for (const s of this.snapshot) if (!isHost(s)) (s as DeviceBuffer).dispose();
    this.snapshot = [];
  }

  /** dst = src (n elements): a typed-array copy on the cpu, the device's copy kernel elsewhere */
  private copy(dst: F32Buf, src: F32Buf): void {
    if (isHost(dst)) (dst as Float32Array).set(src as Float32Array);
    else kernelsFor(this.device).copyF32(dst, src, dst.length);
  }

  /** false with snapshotEvery 0: bad steps are skipped, nothing is restored */
  get keepsSnapshot(): boolean {
    return (this.options.snapshotEvery ?? 1) > 0;
  }

  private take(step: number): void {
    const old = this.snapshot;
    this.snapshot = this.buffers.map((b, i) => {
      const s = old[i];
      if (s && s.length === b.length) {
        this.copy(s, b);
        return s;
      }
      if (s && !isHost(s)) (s as DeviceBuffer).dispose();
      if (isHost(b)) return (b as Float32Array).slice();
      const fresh = backendFor(this.device).alloc(b.length, 'f32');
      this.copy(fresh, b);
      return fresh;
    });
    for (const s of old.slice(this.buffers.length)) if (!isHost(s)) (s as DeviceBuffer).dispose();
    this.snapshotStep = step;
    this.goodSinceSnapshot = 0;
  }

  /**
   * Call once per optimizer step with the step's scalars. Returns true when the step may be applied;
   * false when it must be skipped (state restored). Throws NonFiniteError after too many bad steps in a row.
   */
  check(step: number, values: Record<string, number>): boolean {
    const bad = Object.entries(values).filter(([, v]) => !Number.isFinite(v));
    if (bad.length === 0) {
      this.consecutiveBad = 0;
      return true;
    }
    this.reject(step, bad.map(([k, v]) => `${k}=${v}`).join(', '));
    return false;
  }

  /**
   * A step found bad by other means (the weights after its update are not finite: an update that overflowed
   * although the loss and gradient norm were finite). Counts it and restores the last good state, like a bad
   * check(); `what` says what was wrong in the error thrown after maxConsecutive bad steps in a row.
   */
  reject(step: number, what: string): void {
    this.skipped++;
    this.consecutiveBad++;
    this.restore();
    const max = this.options.maxConsecutive ?? 5;
    if (this.consecutiveBad >= max) {
      const state = this.keepsSnapshot
        ? `restored the state of step ${this.snapshotStep} and stopped`
        : 'stopped (no in-memory snapshot is kept: nanGuardSnapshotSteps 0; resume from the last checkpoint)';
      throw new NonFiniteError(
        `step ${step}: ${what} for ${this.consecutiveBad} steps in a row; ${state} (lower the learning rate or check the data)`,
      );
    }
  }

  /** After a good step was applied: counts towards the next snapshot. */
  applied(step: number): void {
    if (!this.keepsSnapshot) return;
    this.goodSinceSnapshot++;
    if (this.goodSinceSnapshot >= (this.options.snapshotEvery ?? 1)) this.take(step);
  }

  /** Copies the last good snapshot back into the registered buffers (nothing without one). */
  restore(): void {
    if (!this.keepsSnapshot) return;
    this.buffers.forEach((b, i) => this.copy(b, this.snapshot[i]));
  }
}
