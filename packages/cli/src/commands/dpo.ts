import { join } from 'node:path';
import type { Command } from 'commander';
import { DPO_CONFIG_SPEC, DpoTrainer, fromPretrained, saveTrainedModel, toDpoExamples, toKtoExamples, validateDpoConfig, type DpoConfig } from '@rlhf/core';
import { addTrainingOptions, configFromCli, loadExamples, loadStartingModel, finishInterrupted, printSummary, progressReporter, sameTokenizer, trainWithSignals, type CommonFlags } from './train-common';

/**
 * `rlhf dpo`: the DPO family, by --loss-type: DPO (sigmoid, cDPO), IPO, hinge, SimPO and ORPO on preferences
 * or comparisons (every ranked pair); KTO on unpaired feedback {prompt, completion, label}. The policy (or with
 * --lora-*, its PEFT adapter, whose reference is the base under it) lands in <out>/final.
 */
export function registerDpo(program: Command): void {
  const cmd = program
    .command('dpo')
    .description('the DPO family on preference pairs (or every pair of ranked comparisons): sigmoid (DPO, cDPO), ipo, hinge, simpo and orpo (reference-free); kto on unpaired good/bad feedback {prompt, completion, label}');
  addTrainingOptions(cmd, DPO_CONFIG_SPEC).action(async (opts: Record<string, unknown> & CommonFlags) => {
    const config = configFromCli<DpoConfig>('dpo config', DPO_CONFIG_SPEC, validateDpoConfig, opts);
    const { model, tokenizer, tokenizerOut, resume } = loadStartingModel(config.modelPath, opts);
    // KTO reads feedback records (TRL's unpaired {prompt, completion, label}), the other losses pairs; a record
    // of the other kind is named by its file and line, with the conversion that fits
    const load = (path: string | null, field: string) =>
      config.lossType === 'kto' ? loadExamples(path, field, (r) => toKtoExamples(tokenizer, r)) : loadExamples(path, field, (r) => toDpoExamples(tokenizer, r));
    const train = await load(config.datasetPath, 'datasetPath');
    const evalData = config.evalDatasetPath ? await load(config.evalDatasetPath, 'evalDatasetPath') : undefined;
    if (config.refModelPath) sameTokenizer(tokenizer, config.refModelPath, 'refModelPath');
    const refModel = config.refModelPath ? fromPretrained(config.refModelPath, { mergeAdapter: true }).model.freeze() : undefined;
    const progress = progressReporter();
    const trainer = new DpoTrainer(model, train, { config, evalData, refModel, progress, resume, tokenizer });
    const result = await trainWithSignals(trainer, progress);
    // one writer under mpirun: rank 0 saves the final model and prints the summary (every rank holds the same weights)
    if (!trainer.isMainRank) return;
    if (result.interrupted) return finishInterrupted('dpo', opts, result);
    const { steps, lastEval } = result;
    const final = join(trainer.outputDir, 'final');
    const saved = saveTrainedModel(final, model, { baseModelPath: config.modelPath, ...tokenizerOut });
    printSummary({ command: 'dpo', final, saved, steps, eval: lastEval });
  });
}
