import type { Command } from 'commander';
import { info } from '@rlhf/native';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print, as JSON, the native runtime: version, SIMD level, threads, CUDA build and devices')
    .action(() => {
      process.stdout.write(`${JSON.stringify(info(), null, 2)}\n`);
    });
}
