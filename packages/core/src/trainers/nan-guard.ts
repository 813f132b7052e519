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
  private buffers: Float32Array[] = [];
  private snapshot: Float32Array[] = [];
  private goodSinceSnapshot = 0;
  private consecutiveBad = 0;
  /** steps skipped over the whole run */
  skipped = 0;
  /** the step of the current snapshot */
  snapshotStep = -1;

  constructor(
    private readonly options: { maxConsecutive?: number; snapshotEvery?: number } = {},
  ) {}

  /** The buffers to protect (parameters, optimizer moments); snapshots them now (unless snapshotEvery is 0). */
  register(buffers: Float32Array[], step = 0): void {
    this.buffers = buffers;
    if (this.keepsSnapshot) this.take(step);
  }

  /** false with snapshotEvery 0: bad steps are skipped, nothing is restored */
  get keepsSnapshot(): boolean {
    return (this.options.snapshotEvery ?? 1) > 0;
  }

  private take(step: number): void {
    this.snapshot = this.buffers.map((b, i) => {
      const s = this.snapshot[i];
      if (s && s.length === b.length) {
        s.set(b);
        return s;
      }
      return b.slice();
    });
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
    this.buffers.forEach((b, i) => b.set(this.snapshot[i]));
  }
}
