/**
 * Collectives between the ranks of a data-parallel job, behind one interface: `SingleProcess` (world size 1, every
 * call is the identity) and `MpiCollective` (CPU ranks under mpirun, through @rlhf/native's rlhf_mpi.node). The
 * NCCL backend for GPU ranks works on device buffers (@rlhf/native's cuda.NcclCommunicator); trainers hold their
 * gradients in host memory today, so they use MPI.
 *
 * `worldCollective()` is the process's collective, from the launcher's environment: MPI when an MPI launcher
 * started the process (OMPI_COMM_WORLD_RANK / PMIX_RANK / PMI_RANK), a single process otherwise. No sockets of
 * our own: every byte between ranks goes through MPI.
 */
import { mpi as nativeMpi, type mpi as MpiNs } from '@rlhf/native';

export type ReduceOp = 'sum' | 'avg';
export type CollectiveBackend = 'single' | 'mpi' | 'nccl';
type Bytes = Float32Array | Float64Array | Int32Array | Uint8Array;

/** A queued all-reduce: the data was copied when it started; wait() copies the result out. */
export interface PendingReduce {
  test(): boolean;
  /** blocks until it is done; writes the result into `outs` (the lengths it started with), if given */
  wait(outs?: Float32Array[]): void;
}

export interface Collective {
  readonly rank: number;
  readonly size: number;
  readonly backend: CollectiveBackend;
  /** In place on every rank. */
  allReduce(buf: Float32Array | Float64Array, op?: ReduceOp): void;
  /** Copies `bufs` (reduced as one buffer) and starts the all-reduce; returns at once. */
  allReduceStart(bufs: Float32Array[], op?: ReduceOp): PendingReduce;
  /** In place: every rank gets root's contents. */
  broadcast(buf: Bytes, root?: number): void;
  barrier(): void;
  /** Every rank's `send` (same type and length everywhere), rank 0's first. */
  allGather<T extends Bytes>(send: T): T;
  /** "mpi: rank 0 of 2 (Open MPI v4.1.4)" */
  describe(): string;
}

/** World size 1: nothing to exchange. */
export class SingleProcess implements Collective {
  readonly rank = 0;
  readonly size = 1;
  readonly backend = 'single' as const;
  allReduce(): void {}
  allReduceStart(bufs: Float32Array[]): PendingReduce {
    const copies = bufs.map((b) => b.slice());
    return {
      test: () => true,
      wait: (outs) => outs?.forEach((o, i) => o.set(copies[i])),
    };
  }
  broadcast(): void {}
  barrier(): void {}
  allGather<T extends Bytes>(send: T): T {
    return send.slice() as T;
  }
  describe(): string {
    return 'single process';
  }
}

/** CPU ranks over MPI (rlhf_mpi.node's communication thread). */
export class MpiCollective implements Collective {
  readonly backend = 'mpi' as const;
  readonly rank: number;
  readonly size: number;
  private readonly m: MpiNs.MpiBinding;
  private readonly library: string;

  constructor(opts: { timeoutSeconds?: number } = {}) {
    const m = nativeMpi.initMpi({ timeoutSeconds: opts.timeoutSeconds });
    this.m = m;
    this.rank = m.rank;
    this.size = m.size;
    this.library = m.info().library ?? '';
  }
  allReduce(buf: Float32Array | Float64Array, op: ReduceOp = 'sum'): void {
    this.m.allReduce(buf, op);
  }
  allReduceStart(bufs: Float32Array[], op: ReduceOp = 'sum'): PendingReduce {
    const id = this.m.allReduceStart(bufs, op);
    return { test: () => this.m.allReduceTest(id), wait: (outs) => this.m.allReduceWait(id, outs) };
  }
  broadcast(buf: Bytes, root = 0): void {
    this.m.broadcast(buf, root);
  }
  barrier(): void {
    this.m.barrier();
  }
  allGather<T extends Bytes>(send: T): T {
    return this.m.allGather(send);
  }
  describe(): string {
    return `mpi: rank ${this.rank} of ${this.size}${this.library ? ` (${this.library})` : ''}`;
  }
}

/** Seconds a collective waits for its peers: RLHF_COLLECTIVE_TIMEOUT_S, default 600 (as torch.distributed). */
export function collectiveTimeoutSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.RLHF_COLLECTIVE_TIMEOUT_S;
  if (v === undefined || v === '') return 600;
  const s = Number(v);
  if (!(s > 0) || !Number.isFinite(s)) throw new RangeError(`RLHF_COLLECTIVE_TIMEOUT_S=${JSON.stringify(v)} is not a positive number of seconds`);
  return s;
}

let world: Collective | null = null;

/**
 * The process's collective, made on first use: MPI when an MPI launcher started this process (even `mpirun -n
 * 1`), a single process otherwise.
 */
export function worldCollective(): Collective {
  if (!world) world = nativeMpi.launcherWorld() ? new MpiCollective({ timeoutSeconds: collectiveTimeoutSeconds() }) : new SingleProcess();
  return world;
}

/** Where this process stands, without starting MPI: for `rlhf info`. */
export function describeWorld(): { rank: number; size: number; backend: CollectiveBackend; launcher: string | null; detail: string } {
  const w = nativeMpi.launcherWorld();
  if (!w) return { rank: 0, size: 1, backend: 'single', launcher: null, detail: 'not started by an MPI launcher' };
  const avail = nativeMpi.mpiAvailable();
  return {
    rank: w.rank,
    size: w.size,
    backend: 'mpi',
    launcher: w.launcher,
    detail: avail.ok ? `rlhf_mpi.node built with ${avail.compiledWith}` : `the MPI addon cannot be loaded: ${avail.reason}`,
  };
}

/** Rank 0's JSON-able value on every rank. */
export function broadcastJson<T>(c: Collective, value: T, root = 0): T {
  if (c.size === 1) return value;
  const bytes = c.rank === root ? new TextEncoder().encode(JSON.stringify(value)) : new Uint8Array(0);
  const len = new Float64Array([bytes.length]);
  c.broadcast(len, root);
  const buf = c.rank === root ? bytes : new Uint8Array(len[0]);
  c.broadcast(buf, root);
  return JSON.parse(new TextDecoder().decode(buf)) as T;
}

/**
 * Weighted mean of each metric over the ranks: Σ w_r·m_r / Σ w_r, with w_r this rank's share of the step (its
 * examples or tokens); a rank with weight 0 adds nothing (its metrics may be NaN: it saw no data). Every rank must
 * report the same keys: a checksum of the names rides along and a difference is named.
 */
export function averageMetrics(c: Collective, metrics: Record<string, number>, weight = 1): Record<string, number> {
  if (c.size === 1) return metrics;
  const keys = Object.keys(metrics).sort();
  const buf = new Float64Array(keys.length + 2);
  keys.forEach((k, i) => (buf[i] = weight > 0 ? weight * metrics[k] : 0));
  buf[keys.length] = weight;
  buf[keys.length + 1] = nameChecksum(keys);
  const mine = buf[keys.length + 1];
  // the lengths differ when the key sets do: the handshake of the all-reduce names that
  c.allReduce(buf, 'sum');
  if (buf[keys.length + 1] !== mine * c.size) {
    throw new Error(`rank ${c.rank}: the ranks report different metrics for this step (this rank: ${keys.join(', ')})`);
  }
  const total = buf[keys.length];
  const out: Record<string, number> = {};
  keys.forEach((k, i) => (out[k] = total > 0 ? buf[i] / total : Number.NaN));
  return out;
}

/** A number below 2^31 from the names (FNV-1a): equal sets of names give equal sums over the ranks. */
function nameChecksum(keys: string[]): number {
  let h = 0x811c9dc5;
  for (const k of keys) {
    for (let i = 0; i < k.length; i++) {
      h ^= k.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    h ^= 0xff;
  }
  return h & 0x7fffffff;
}
