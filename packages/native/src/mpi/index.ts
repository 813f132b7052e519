/**
 * @rlhf/native's MPI half: collectives between the processes of an `mpirun` job, from rlhf_mpi.node. Nothing is
 * loaded until `mpi()` is called, so the CPU addon never needs libmpi.
 *
 *   import { mpi } from '@rlhf/native';
 *   const w = mpi.launcherWorld();            // { rank, size, ... } under mpirun, null otherwise
 *   const m = mpi.initMpi({ timeoutSeconds: 600 });  // MPI_Init_thread; finalised when the process exits
 *   m.allReduce(grads, 'sum');
 *
 * The addon is looked for at RLHF_MPI_PATH, else build/Release/rlhf_mpi.node, else its prebuild; it is built where
 * MPI's headers are found (packages/native/mpi/rlhf_mpi.cmake; Debian: libopenmpi-dev).
 */
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import { binaryCandidates, loadNativeBinding, NativeLoadError } from '../loader';
import type { MpiBinding } from './binding';

export type { MpiBinding, MpiInfo, MpiInitInfo, ReduceOp } from './binding';

/**
 * Where rlhf_mpi.node is looked for: RLHF_MPI_PATH, else build/Release/rlhf_mpi.node in this package, else its
 * prebuild (prebuilds/<platform>-<arch>/rlhf_mpi.node, when the package shipped one).
 */
export function mpiBinaryPath(): string {
  if (process.env.RLHF_MPI_PATH) return resolve(process.env.RLHF_MPI_PATH);
  const candidates = binaryCandidates('rlhf_mpi.node');
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

let cached: { path: string; binding: MpiBinding } | undefined;

/**
 * The MPI addon, loaded on first use (RTLD_GLOBAL: an MPI whose plugins are shared objects finds its own symbols
 * through it, as mpi4py does); a NativeLoadError says why it is missing.
 */
export function mpi(): MpiBinding {
  const path = mpiBinaryPath();
  if (cached?.path !== path) {
    if (!existsSync(path)) {
      throw new NativeLoadError(
        `@rlhf/native: the MPI addon is missing: no file at ${path}. It is built only where MPI's headers are found ` +
          '(Debian: apt-get install openmpi-bin libopenmpi-dev, or bash scripts/setup-openmpi.sh; then npm run build:native ' +
          '-w @rlhf/native); RLHF_MPI=auto|on|off, see packages/native/mpi/rlhf_mpi.cmake.',
        path,
      );
    }
    cached = { path, binding: loadNativeBinding(path, { dlopenFlags: constants.dlopen.RTLD_NOW | constants.dlopen.RTLD_GLOBAL }) as unknown as MpiBinding };
  }
  return cached.binding;
}

/** Whether the MPI addon can be loaded here, and if not why. */
export function mpiAvailable(): { ok: boolean; reason: string; compiledWith?: string } {
  try {
    return { ok: true, reason: '', compiledWith: mpi().info().compiledWith };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

/** This process's place in a job, as its launcher's environment says. */
export interface LauncherWorld {
  rank: number;
  size: number;
  /** rank among the processes of this node (for choosing a GPU) */
  localRank: number;
  localSize: number;
  /** which variables said so */
  launcher: 'openmpi' | 'pmix' | 'pmi';
}

function int(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name}=${JSON.stringify(v)} in the environment is not a non-negative integer`);
  return n;
}

/**
 * Rank and world size from the launcher's environment: Open MPI's mpirun (OMPI_COMM_WORLD_RANK / _SIZE /
 * _LOCAL_RANK / _LOCAL_SIZE), a PMIx launcher (PMIX_RANK with OMPI_COMM_WORLD_SIZE or PMIX_SIZE), or a PMI-1/2
 * one such as MPICH's hydra or Slurm's srun --mpi=pmi2 (PMI_RANK / PMI_SIZE). null when none is set: a plain
 * process, world size 1.
 */
export function launcherWorld(env: NodeJS.ProcessEnv = process.env): LauncherWorld | null {
  const check = (w: LauncherWorld): LauncherWorld => {
    if (w.size < 1 || w.rank >= w.size) throw new RangeError(`launcher environment (${w.launcher}): rank ${w.rank} is not below the world size ${w.size}`);
    return w;
  };
  const oRank = int(env, 'OMPI_COMM_WORLD_RANK');
  const oSize = int(env, 'OMPI_COMM_WORLD_SIZE');
  if (oRank !== undefined && oSize !== undefined) {
    return check({
      rank: oRank,
      size: oSize,
      localRank: int(env, 'OMPI_COMM_WORLD_LOCAL_RANK') ?? 0,
      localSize: int(env, 'OMPI_COMM_WORLD_LOCAL_SIZE') ?? 1,
      launcher: 'openmpi',
    });
  }
  const pRank = int(env, 'PMIX_RANK');
  const pSize = oSize ?? int(env, 'PMIX_SIZE');
  if (pRank !== undefined && pSize !== undefined) {
    return check({ rank: pRank, size: pSize, localRank: int(env, 'PMIX_LOCAL_RANK') ?? 0, localSize: int(env, 'PMIX_LOCAL_SIZE') ?? 1, launcher: 'pmix' });
  }
  const rank = int(env, 'PMI_RANK');
  const size = int(env, 'PMI_SIZE');
  if (rank !== undefined && size !== undefined) {
    return check({ rank, size, localRank: int(env, 'MPI_LOCALRANKID') ?? 0, localSize: int(env, 'MPI_LOCALNRANKS') ?? 1, launcher: 'pmi' });
  }
  return null;
}

let exitHookInstalled = false;

/**
 * MPI_Init_thread, once per process, for a process started by an MPI launcher (a plain process is refused:
 * Open MPI's singleton start forks a daemon and can end the process when that fails). When the process exits,
 * MPI is finalised (exit code 0, or 130: a graceful stop of a training run) or the whole job is ended (any other
 * code), so that one failed rank ends every rank at once instead of leaving them waiting in their next collective.
 */
export function initMpi(opts: { timeoutSeconds?: number; env?: NodeJS.ProcessEnv } = {}): MpiBinding & { rank: number; size: number } {
  const world = launcherWorld(opts.env ?? process.env);
  if (!world) {
    throw new Error(
      'initMpi: this process was not started by an MPI launcher (no OMPI_COMM_WORLD_RANK / PMIX_RANK / PMI_RANK in ' +
        'its environment): run it as `mpirun -n N node ...` (as root add --allow-run-as-root)',
    );
  }
  const m = mpi();
  const got = m.init(opts.timeoutSeconds ?? 600);
  if (got.rank !== world.rank || got.size !== world.size) {
    throw new Error(`initMpi: MPI says rank ${got.rank} of ${got.size}, the launcher's environment rank ${world.rank} of ${world.size}`);
  }
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', (code) => {
      const info = m.info();
      if (!info.initialized || info.finalized) return;
      // 0: success; 130: a stop every rank agreed on (the trainers' Ctrl-C): both leave MPI in good order
      if (code === 0 || code === 130) {
        try {
          m.finalize();
        } catch (e) {
          process.stderr.write(`${(e as Error).message}\n`);
        }
      } else if (world.launcher !== 'openmpi') {
        m.abort(Math.min(255, Math.max(1, code)));
      }
      // Under Open MPI's mpirun a rank that exits non-zero without MPI_Finalize makes mpirun end the job at once;
      // it also forwards all this rank's output first, which an MPI_Abort (killing the job from here) can lose.
    });
  }
  return Object.assign(Object.create(m) as MpiBinding, { rank: got.rank, size: got.size });
}

/** The mpirun on PATH (or at RLHF_MPIRUN), or null. */
export function findMpirun(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.RLHF_MPIRUN) return existsSync(env.RLHF_MPIRUN) ? env.RLHF_MPIRUN : null;
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = join(dir, 'mpirun');
    if (existsSync(p)) return p;
  }
  return null;
}

/**
 * Arguments for `mpirun` to start `n` ranks on this machine: as root Open MPI wants --allow-run-as-root, and
 * --oversubscribe lets n exceed the cores (tests run 2 ranks on 2 shared cores). Open MPI's shared-memory
 * single-copy mechanism (CMA) needs ptrace rights that containers often lack: it is turned off, the copy-in /
 * copy-out path is used instead.
 */
export function mpirunArgs(n: number, opts: { oversubscribe?: boolean } = {}): string[] {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`mpirunArgs: n must be an integer ≥ 1, got ${n}`);
  const args = ['-n', String(n)];
  if (process.getuid?.() === 0) args.push('--allow-run-as-root');
  if (opts.oversubscribe ?? true) args.push('--oversubscribe');
  args.push('--mca', 'btl_vader_single_copy_mechanism', 'none');
  return args;
}
