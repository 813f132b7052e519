/**
 * A small seeded generator (mulberry32, 32-bit state) so that initialisation, sampling and tests repeat
 * exactly from a seed. Not cryptographic.
 */
export class Rng {
  private state: number;
  private spare: number | null = null;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng: seed must be a finite number, got ${seed}`);
    this.state = Math.floor(seed) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box-Muller, the second value kept for the next call). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An independent generator at this one's state: it draws what this one would draw next. */
  clone(): Rng {
    const r = new Rng(0);
    r.state = this.state;
    r.spare = this.spare;
    return r;
  }
}

/**
 * A seed for item `index` of a batch drawn from `seed` (a mulberry32 step of the pair): each row of a sampled
 * batch gets a generator of its own, whatever rows share its batch or its process.
 */
export function derivedSeed(seed: number, index: number): number {
  const r = new Rng((Math.floor(seed) ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0);
  r.next();
  return Math.floor(r.next() * 4294967296) >>> 0;
}
