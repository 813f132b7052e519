import { join } from 'node:path';
import type { Command } from 'commander';
import { REWARD_CONFIG_SPEC, RewardModel, RewardTrainer, saveTrainedModel, toRankedExamples, validateRewardConfig, type RewardConfig } from '@rlhf/core';
import { addTrainingOptions, configFromCli, loadExamples, loadStartingModel, finishInterrupted, printSummary, progressReporter, trainWithSignals, type CommonFlags } from './train-common';

/**
 * `rlhf rm`: a reward model (the SFT model's trunk + a scalar head) on ranked comparisons; lands in <out>/final (with
 * --lora-*, as a PEFT adapter with the head in modules_to_save, which `rlhf ppo --reward-model-path` reads).
 */
export function registerRm(program: Command): void {
  const cmd = program.command('rm').description('reward model on ranked comparisons (InstructGPT K-wise loss) or preference pairs');
  addTrainingOptions(cmd, REWARD_CONFIG_SPEC).action(async (opts: Record<string, unknown> & CommonFlags) => {
    const config = configFromCli<RewardConfig>('rm config', REWARD_CONFIG_SPEC, validateRewardConfig, opts);
    const { model, tokenizer, tokenizerOut, resume } = loadStartingModel(config.modelPath, opts);
    const rm = new RewardModel(model);
    const train = await loadExamples(config.datasetPath, 'datasetPath', (r) => toRankedExamples(tokenizer, r));
    const evalData = config.evalDatasetPath ? await loadExamples(config.evalDatasetPath, 'evalDatasetPath', (r) => toRankedExamples(tokenizer, r)) : undefined;
    const progress = progressReporter();
    const trainer = new RewardTrainer(rm, train, { config, evalData, progress, resume, tokenizer });
    const result = await trainWithSignals(trainer, progress);
    // one writer under mpirun: rank 0 saves the final model and prints the summary (every rank holds the same weights)
    if (!trainer.isMainRank) return;
    if (result.interrupted) return finishInterrupted('rm', opts, result);
    const { steps, lastEval } = result;
    const final = join(trainer.outputDir, 'final');
    const saved = saveTrainedModel(final, model, {
      head: rm.head,
      baseModelPath: config.modelPath,
      ...tokenizerOut,
      files: { 'reward-normalization.json': `${JSON.stringify(trainer.normalization, null, 2)}\n` },
    });
    printSummary({ command: 'rm', final, saved, steps, eval: lastEval, normalization: trainer.normalization });
  });
}
