import type { Command } from 'commander';
import { info } from '@rlhf/native';

// The built-in demo (the whole recipe on a synthetic task) is not built yet: until it is, `rlhf demo`
// says so plainly and shows the runtime it would run on, and exits 0 so that the README's first command
// is a working install check.
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the whole RLHF recipe on a synthetic task (not built yet: prints the runtime for now)')
    .action(() => {
      process.stdout.write('rlhf demo: the built-in demo is not built yet. The runtime it will use:\n');
      process.stdout.write(`${JSON.stringify(info(), null, 2)}\n`);
    });
}
