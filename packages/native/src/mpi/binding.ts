/**
 * The interface of rlhf_mpi.node, the MPI half of @rlhf/native (sources in packages/native/mpi/). Every
 * collective runs on the addon's communication thread, in the order it was called; the blocking ones return
 * when it is done on this rank. Errors name the rank, the call and its number ("rank 1: allReduce #7 (sum,
 * 1234 float32) ..."), and, after a timeout, what every peer answered when asked where it was.
 */
export type ReduceOp = 'sum' | 'avg';

export interface MpiInfo {
  /** the MPI the addon was compiled against ("Open MPI 4.1.4") */
  compiledWith: string;
  initialized: boolean;
  finalized: boolean;
  /** seconds a collective may wait for its peers before it fails */
  timeoutSeconds: number;
  rank?: number;
  size?: number;
  /** MPI_Get_library_version, first line */
  library?: string;
  threadLevel?: string;
}

export interface MpiInitInfo {
  rank: number;
  size: number;
  library: string;
  threadLevel: string;
}

export interface MpiBinding {
  info(): MpiInfo;
  /** MPI_Init_thread on the communication thread (once per process; later calls return the same). */
  init(timeoutSeconds: number): MpiInitInfo;
  setTimeout(seconds: number): void;
  /** In place on every rank; blocks. */
  allReduce(buf: Float32Array | Float64Array, op: ReduceOp): void;
  /** Copies `bufs` (reduced as one buffer) and queues the all-reduce; returns its id at once. */
  allReduceStart(bufs: Float32Array | Float32Array[], op: ReduceOp): number;
  allReduceTest(id: number): boolean;
  /** Blocks until all-reduce `id` is done, then copies the result into `outs` (the lengths it started with). */
  allReduceWait(id: number, outs?: Float32Array | Float32Array[]): void;
  /** In place: every rank gets root's contents; blocks. */
  broadcast(buf: Float32Array | Float64Array | Int32Array | Uint8Array, root: number): void;
  barrier(): void;
  /** Every rank's `send` (same type and length on every rank), rank 0's first. */
  allGather<T extends Float32Array | Float64Array | Int32Array | Uint8Array>(send: T): T;
  /** MPI_Abort with this exit code: every rank of the job ends (mpirun names this rank). */
  abort(code: number): void;
  finalize(): void;
}
