import type { Command } from 'commander';
import { describeWorld } from '@rlhf/core';
import { info, mpi } from '@rlhf/native';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print, as JSON, the native runtime (version, SIMD level, threads, CUDA build and devices) and this process\'s place in a data-parallel job (rank, world size, backend)')
    .action(() => {
      const built = mpi.mpiAvailable();
      const distributed = {
        ...describeWorld(),
        mpiAddon: built.ok ? { built: true, compiledWith: built.compiledWith } : { built: false, reason: built.reason },
        mpirun: mpi.findMpirun(),
      };
      process.stdout.write(`${JSON.stringify({ ...info(), distributed }, null, 2)}\n`);
    });
}
