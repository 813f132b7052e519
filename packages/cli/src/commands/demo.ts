import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { arithmeticTable, runArithmeticDemo, writeArithmeticReports, writeArithmeticSeedsReport, type ArithmeticSummary } from '../demo/arithmetic-demo';
import { aggregateSeeds, multiSeedTable, parseSeedList, writeMultiSeedReports } from '../demo/multi-seed';
import { runDemo, type DemoSummary } from '../demo/run-demo';
import { summaryTable, writeReports } from '../demo/report';
import { ensureWritableDir, type Device } from '@rlhf/core';
import { parseDevice, progressReporter, singleProcessOnly } from './train-common';

const HELP = `
The task: customer-support replies that should follow a brand's tone guide (address the issue raised with the
right remedy, be polite, name the product, avoid banned phrases, no filler, stay concise). Everything is
generated from --seed; nothing is downloaded. A hidden gold labeler scores replies by the guide's rules and
ranks K = 4 replies with noise, as a labeling team would; the reward model only ever sees those rankings.

Stages (each with a progress bar and a line of results):
  0 base   BPE tokenizer + small GPT-2 pretrained on a generated "web" corpus (replies of every quality)
  1 sft    contractor demonstrations (data/demos.jsonl), supervised fine-tuning
  2 rm     K = 4 SFT samples per prompt ranked by the labeler (data/comparisons.jsonl), K-wise reward model
  3 ppo    PPO of the SFT policy against the reward model, KL penalty to the SFT reference
  3 grpo   (--grpo) GRPO of the same SFT policy against the same reward model (1024 sampled replies, G = 8)
  4 eval   held-out prompts: gold win rate PPO (and GRPO) vs SFT and SFT vs base, reward-model vs gold score
           along PPO (over-optimisation curve), KL, samples side by side

Output folder: data/ (every stage's data, @rlhf/data format), configs/ (rerun a stage from inside the folder,
e.g. \`rlhf rm --config configs/rm.json\`), tokenizer/ (the BPE tokenizer), models/ (init, base, sft, rm, ppo, grpo),
runs/ (metrics.jsonl and checkpoints), samples.jsonl, report.json, report.md, report.html.

--seeds 1-5 runs the whole recipe once per seed, each into <out>/seed-N (the folder above, with its own
report), then writes report.json / report.md / report.html over the seeds into <out>: every headline figure
per seed, its mean, its worst seed and its spread (standard deviation, min - max), and the over-optimisation
curve of every seed. One seed can hide a recipe that fails on others.

--lora trains LoRA adapters (r 16, alpha 32, on every projection; the token embedding, also the LM head, trained
whole beside them: PEFT's modules_to_save) at stages 1-3 instead of every weight, each stage
on the previous one's model with its adapter merged: models/sft, models/rm and models/ppo are PEFT adapter folders
(\`rlhf lora merge\` folds one into its base), and PPO's reference is the SFT model under the policy's adapters, not a
copy. The report adds PPO's gold win rate over the base, the yardstick a LoRA run and a full one share.

--task arithmetic: a second task, with a verifiable reward instead of a reward model. Word problems that add
or subtract two one-digit numbers ("Ann has 7 coins and gets 5 more. How many coins does Ann have now?"),
generated from the seed, 256 of them held out (their text is in no training data). 0 base: BPE + GPT-2
pretrained on problems answered right half of the time; 1 sft: contractor demonstrations with the contractors'
systematic slips (a subtraction added more often than not, an addition one off); 2 grpo: GRPO with the
exact-match reward (answerMatch on each prompt's "answer" column), no reward model; 3 eval: held-out accuracy
of SFT and GRPO, one answer sampled at the demo's temperature (the same seed for both) and the greedy answer.
--seeds works as above.
`;

/** `rlhf demo`: the whole RLHF recipe on the built-in synthetic task (demo/). */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the whole RLHF recipe (base, SFT, reward model, PPO, evaluation) on a built-in synthetic task, in minutes on a CPU (--device cuda: a GPU)')
    .option('--out <dir>', 'output folder', './demo-out')
    .option('--seed <n>', 'seed of everything (same seed, same results)', '1')
    .option('--seeds <list>', 'run the whole recipe once per seed (e.g. 1-5 or 1,3,7), each into <out>/seed-N, and report mean, worst and spread of every figure')
    .option('--task <name>', "support (the recipe above) or arithmetic (GRPO with an exact-match reward on word problems; see below)", 'support')
    .option('--grpo', 'also run GRPO from the same SFT policy against the same reward model, and report it beside PPO (gold win rate, KL, rollout and update time)', false)
    .option('--quick', 'a smaller run that checks the whole chain (about 25 s of CPU time, 40 s with --grpo; the full run a few minutes; --task arithmetic: about half a minute, the full run about 2 minutes)', false)
    .option('--device <name>', 'where every stage trains: cpu | cuda (rlhf_cuda.node and an NVIDIA GPU) | emulated (the test device)', 'cpu')
    .option('--lora', 'stages 1-3 train LoRA adapters (r 16, alpha 32, every projection, the token embedding whole; PEFT adapter folders in models/) instead of every weight', false)
    .addHelpText('after', HELP)
    .action(async (opts: { out: string; seed: string; seeds?: string; quick: boolean; grpo: boolean; lora: boolean; task: string; device: string }, cmd: Command) => {
      singleProcessOnly('demo');
      if (opts.task !== 'support' && opts.task !== 'arithmetic') throw new Error(`--task must be support or arithmetic, got ${opts.task}`);
      if (opts.task === 'arithmetic' && opts.grpo) throw new Error('--grpo adds GRPO to the support task; --task arithmetic always runs GRPO');
      if (opts.task === 'arithmetic' && opts.lora) throw new Error('--lora applies to the support task; --task arithmetic fine-tunes every weight');
      // refused here, before the output folder is made (runDemo refuses it too, for callers of the API)
      if (opts.lora && opts.grpo) throw new Error('--lora with --grpo is not supported (the GRPO stage fine-tunes every weight); run them apart');
      if (opts.seeds !== undefined && cmd.getOptionValueSource('seed') === 'cli') throw new Error('--seed and --seeds exclude each other: give one seed or a list');
      const seeds = opts.seeds !== undefined ? parseSeedList(opts.seeds) : [parseSeed(opts.seed)];
      const device = parseDevice(opts.device);
      const out = resolve(opts.out);
      ensureWritableDir(out, `--out ${opts.out}`); // not mkdirSync's recursive mode: it loops forever under /proc
      const quick = `${opts.grpo ? ' --grpo' : ''}${opts.quick ? ' --quick' : ''}${opts.lora ? ' --lora' : ''}${device !== 'cpu' ? ` --device ${device}` : ''}`;
      const print = (l: string) => process.stdout.write(`${l}\n`);
      if (opts.task === 'arithmetic') return arithmeticDemo(seeds, out, opts.quick, opts.seeds, print, device);
      if (opts.seeds === undefined) {
        const command = `rlhf demo --seed ${seeds[0]}${quick}`;
        print(`${command}: output in ${out}`);
        const summary = await runDemo({ out, seed: seeds[0], quick: opts.quick, grpo: opts.grpo, lora: opts.lora, device: device, progress: progressReporter, print });
        writeReports(out, summary, command);
        print(`\n${summaryTable(summary)}\n\nreport: ${resolve(out, 'report.html')}`);
        return;
      }
      const command = `rlhf demo --seeds ${opts.seeds}${quick}`;
      print(`${command}: ${seeds.length} runs, output in ${out}/seed-N, the report over seeds in ${out}`);
      const runs: DemoSummary[] = [];
      for (const seed of seeds) {
        const dir = join(out, `seed-${seed}`);
        ensureWritableDir(dir);
        print(`\nseed ${seed} (${dir})`);
        const summary = await runDemo({ out: dir, seed, quick: opts.quick, grpo: opts.grpo, lora: opts.lora, device: device, progress: progressReporter, print });
        writeReports(dir, summary, `rlhf demo --seed ${seed}${quick}`);
        runs.push(summary);
      }
      const agg = aggregateSeeds(runs);
      writeMultiSeedReports(out, agg, runs, command);
      print(`\n${multiSeedTable(agg)}\n\nreport: ${resolve(out, 'report.html')}`);
    });
}

/** --task arithmetic: one run per seed (into <out>/seed-N when several), then the report over seeds. */
async function arithmeticDemo(seeds: number[], out: string, quick: boolean, seedList: string | undefined, print: (l: string) => void, device: Device): Promise<void> {
  const flags = `--task arithmetic${quick ? ' --quick' : ''}${device !== 'cpu' ? ` --device ${device}` : ''}`;
  if (seedList !== undefined) print(`rlhf demo ${flags} --seeds ${seedList}: ${seeds.length} runs, output in ${out}/seed-N, the report over seeds in ${out}`);
  const runs: ArithmeticSummary[] = [];
  for (const seed of seeds) {
    const dir = seedList === undefined ? out : join(out, `seed-${seed}`);
    ensureWritableDir(dir);
    print(`\nrlhf demo ${flags} --seed ${seed}: output in ${dir}`);
    const s = await runArithmeticDemo({ out: dir, seed, quick, device, progress: progressReporter, print });
    writeArithmeticReports(dir, s, `rlhf demo ${flags} --seed ${seed}`);
    print(`\n${arithmeticTable(s)}`);
    runs.push(s);
  }
  if (seedList === undefined) {
    print(`\nreport: ${resolve(out, 'report.html')}`);
    return;
  }
  const agg = writeArithmeticSeedsReport(out, runs, `rlhf demo ${flags} --seeds ${seedList}`);
  print(`\n${multiSeedTable(agg)}\n\nreport: ${resolve(out, 'report.html')}`);
}

/** --seed: at most 2^32 - 1, as everywhere: the generator keeps 32 bits, so a larger seed would repeat a smaller one. */
function parseSeed(text: string): number {
  const seed = Number(text);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed must be an integer in [0, 4294967295], got ${text}`);
  return seed;
}
