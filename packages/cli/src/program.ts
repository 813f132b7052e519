import { Command } from 'commander';
import { mpi } from '@rlhf/native';
import { registerData } from './commands/data';
import { registerDemo } from './commands/demo';
import { registerExport } from './commands/export';
import { registerGenerate } from './commands/generate';
import { registerInfo } from './commands/info';
import { registerSft } from './commands/sft';
import { registerRm } from './commands/rm';
import { registerPpo } from './commands/ppo';
import { registerDpo } from './commands/dpo';
import { registerGrpo, registerRloo } from './commands/online';
import { registerEval } from './commands/eval';
import { registerLabel } from './commands/label';
import { registerLora } from './commands/lora';

declare const __RLHF_CLI_VERSION__: string | undefined;

/** The `rlhf` command tree; each subcommand lives in its own file under commands/. */
export function buildProgram(): Command {
  const program = new Command('rlhf')
    .description('Reinforcement learning from human feedback in TypeScript: SFT, reward models, PPO, GRPO, RLOO, DPO, evaluation')
    .version(typeof __RLHF_CLI_VERSION__ === 'string' ? __RLHF_CLI_VERSION__ : '0.1.0')
    .showHelpAfterError();
  registerInfo(program);
  registerDemo(program);
  registerData(program);
  registerGenerate(program);
  registerExport(program);
  registerSft(program);
  registerRm(program);
  registerPpo(program);
  registerDpo(program);
  registerGrpo(program);
  registerRloo(program);
  registerLora(program);
  registerEval(program);
  registerLabel(program);
  return program;
}

/**
 * Runs the CLI on argv; errors are printed as one line (never a stack) and give exit code 1. Under mpirun the line
 * names the rank; the exit code then makes mpirun end every rank of the job.
 */
export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    const msg = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
    let who = '';
    try {
      const w = mpi.launcherWorld();
      if (w && w.size > 1) who = `rank ${w.rank} of ${w.size}: `;
    } catch {
      /* a malformed launcher environment: the error says enough */
    }
    process.stderr.write(`rlhf: ${who}${msg}\n`);
    if (process.env.RLHF_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
