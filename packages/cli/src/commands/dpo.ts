import { join } from 'node:path';
import type { Command } from 'commander';
import { DPO_CONFIG_SPEC, DpoTrainer, fromPretrained, saveModelDir, toDpoExamples, validateDpoConfig, type DpoConfig } from '@rlhf/core';
import { addTrainingOptions, configFromCli, loadExamples, loadStartingModel, finishInterrupted, printSummary, progressReporter, resumeFrom, sameTokenizer, trainWithSignals, type CommonFlags } from './train-common';

/** `rlhf dpo`: direct preference optimisation on preferences or comparisons; the policy lands in <out>/final. */
export function registerDpo(program: Command): void {
  const cmd = program.command('dpo').description('direct preference optimisation on preference pairs (or every pair of ranked comparisons)');
  addTrainingOptions(cmd, DPO_CONFIG_SPEC).action(async (opts: Record<string, unknown> & CommonFlags) => {
    const config = configFromCli<DpoConfig>('dpo config', DPO_CONFIG_SPEC, validateDpoConfig, opts);
    const { model, tokenizer, tokenizerDir } = loadStartingModel(config.modelPath, opts.tokenizer);
    const train = await loadExamples(config.datasetPath, 'datasetPath', (r) => toDpoExamples(tokenizer, r));
    const evalData = config.evalDatasetPath ? await loadExamples(config.evalDatasetPath, 'evalDatasetPath', (r) => toDpoExamples(tokenizer, r)) : undefined;
    if (config.refModelPath) sameTokenizer(tokenizer, config.refModelPath, 'refModelPath');
    const refModel = config.refModelPath ? fromPretrained(config.refModelPath).model.freeze() : undefined;
    const progress = progressReporter();
    const trainer = new DpoTrainer(model, train, { config, evalData, refModel, progress, resume: resumeFrom(opts) });
    const result = await trainWithSignals(trainer, progress);
    if (result.interrupted) return finishInterrupted('dpo', opts, result);
    const { steps, lastEval } = result;
    const final = join(config.outputDir, 'final');
    saveModelDir(final, model.hfConfig(), model.stateDict(), { tokenizerFrom: tokenizerDir });
    printSummary({ command: 'dpo', final, steps, eval: lastEval });
  });
}
