/**
 * `rlhf grpo` and `rlhf rloo` (REINFORCE++ with --advantage-estimator reinforce++): online RL of a starting
 * model against reward functions and reward models, on prompts from a data file. The config file holds the
 * trainer's fields (one flag each, as every training command) and `rewardFuncs` (reward-modules.ts); the
 * policy lands in <out>/final with its tokenizer (with --lora-*, its PEFT adapter, whose reference is the base under
 * it). Same conventions as `rlhf ppo`: --resume, Ctrl-C stops at a
 * generation boundary with a checkpoint (exit 130 and the resume command), metrics.jsonl, progress.
 *
 * Prompt records keep their other columns for the reward functions (a `meta` of rlhf records; every column but
 * prompt of a TRL prompt-only file), e.g. {"prompt": "What is 2 + 3?", "answer": "5"} for answerMatch.
 */
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  GRPO_CONFIG_SPEC,
  GrpoTrainer,
  RLOO_CONFIG_SPEC,
  RlooTrainer,
  fromPretrained,
  saveTrainedModel,
  toPromptExamples,
  validateGrpoConfig,
  validateRlooConfig,
  type ConfigProblem,
  type ConfigSpec,
  type GrpoConfig,
  type OnlineConfig,
  type RlooConfig,
} from '@rlhf/core';
import { checkRewardFuncs, loadRewardFuncs } from './reward-modules';
import {
  addTrainingOptions,
  configAndExtrasFromCli,
  finishInterrupted,
  loadExamples,
  loadStartingModel,
  printSummary,
  progressReporter,
  sameTokenizer,
  trainWithSignals,
  type CommonFlags,
} from './train-common';

const REWARDS_HELP = `
Rewards: "rewardFuncs" in --config, a list of
  { "module": "rewards.mjs", "export": "correct", "weight": 1 }     a function of a .js/.mjs/.cjs (.ts with esbuild) module
  { "builtin": "answerMatch", "options": { "column": "answer" } }  also formatMatch { "pattern" }, lengthPenalty
  { "rewardModel": "runs/rm/final", "weight": 0.5 }                a reward model from \`rlhf rm\`
(paths relative to the config file). A reward function gets { prompts, completions, promptIds, completionIds,
rows, stopped, promptIndex } and returns one number or null per completion; async functions are awaited.`;

interface OnlineCommand<C extends OnlineConfig> {
  name: 'grpo' | 'rloo';
  description: string;
  spec: ConfigSpec<C>;
  validate: (input: unknown) => ConfigProblem[];
  make: (...args: ConstructorParameters<typeof GrpoTrainer>) => GrpoTrainer | RlooTrainer;
  /** whether the config uses a reference model */
  usesRef: (c: C) => boolean;
}

function register<C extends OnlineConfig>(program: Command, k: OnlineCommand<C>): void {
  const cmd = program.command(k.name).description(k.description).addHelpText('after', REWARDS_HELP);
  addTrainingOptions(cmd, k.spec).action(async (opts: Record<string, unknown> & CommonFlags) => {
    const { config, extras } = configAndExtrasFromCli<C>(`${k.name} config`, k.spec, k.validate, opts, ['modelPath', 'datasetPath'], { rewardFuncs: checkRewardFuncs });
    if (extras.rewardFuncs === undefined) {
      throw new Error(`${k.name}: no reward: give "rewardFuncs" in --config (rlhf ${k.name} --help shows the forms)`);
    }
    const { model, tokenizer, tokenizerOut, stopTokens, resume } = loadStartingModel(config.modelPath, opts);
    const baseDir = opts.config ? dirname(resolve(opts.config)) : process.cwd();
    const rewards = await loadRewardFuncs(extras.rewardFuncs, baseDir, tokenizer, `${k.name} config`);
    const prompts = await loadExamples(config.datasetPath, 'datasetPath', (r) => toPromptExamples(tokenizer, r));
    const evalPrompts = config.evalDatasetPath ? await loadExamples(config.evalDatasetPath, 'evalDatasetPath', (r) => toPromptExamples(tokenizer, r)) : undefined;
    // a reference is loaded only when a KL uses it (beta 0: none is held in memory)
    let refModel;
    if (config.refModelPath && k.usesRef(config)) {
      sameTokenizer(tokenizer, config.refModelPath, 'refModelPath');
      refModel = fromPretrained(config.refModelPath, { mergeAdapter: true }).model.freeze();
    }
    const progress = progressReporter();
    const trainer = k.make(model, prompts, rewards, {
      config: config as never,
      refModel,
      evalPrompts,
      // fromPretrained knows what ends a response for this model (llama2.c stories end at BOS, HF models at EOS)
      eosTokenId: stopTokens[0] ?? tokenizer.eosId,
      tokenizer,
      progress,
      resume,
    });
    const result = await trainWithSignals(trainer, progress);
    // one writer under mpirun: rank 0 saves the final model and prints the summary (every rank holds the same weights)
    if (!trainer.isMainRank) return;
    if (result.interrupted) return finishInterrupted(k.name, opts, result);
    const final = join(trainer.outputDir, 'final');
    const saved = saveTrainedModel(final, model, { baseModelPath: config.modelPath, ...tokenizerOut });
    printSummary({ command: k.name, final, saved, steps: result.steps, eval: result.lastEval });
  });
}

/** `rlhf grpo`: GRPO and its variants (Dr. GRPO, DAPO, GSPO by their config fields). */
export function registerGrpo(program: Command): void {
  register<GrpoConfig>(program, {
    name: 'grpo',
    description: 'GRPO (and Dr. GRPO, DAPO, GSPO) against reward functions and reward models: G completions per prompt, group-relative advantages',
    spec: GRPO_CONFIG_SPEC,
    validate: validateGrpoConfig,
    make: (...a) => new GrpoTrainer(...a),
    usesRef: (c) => c.beta > 0,
  });
}

/** `rlhf rloo`: RLOO, or REINFORCE++ with --advantage-estimator reinforce++. */
export function registerRloo(program: Command): void {
  register<RlooConfig>(program, {
    name: 'rloo',
    description: 'RLOO (leave-one-out baseline), or REINFORCE++ (--advantage-estimator reinforce++), against reward functions and reward models, KL in the reward',
    spec: RLOO_CONFIG_SPEC,
    validate: validateRlooConfig,
    make: (policy, prompts, rewards, options) => new RlooTrainer(policy, prompts, rewards, options as never),
    usesRef: (c) => c.beta > 0,
  });
}
