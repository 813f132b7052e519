import { join } from 'node:path';
import type { Command } from 'commander';
import { SFT_CONFIG_SPEC, SftTrainer, saveTrainedModel, toSftExamples, validateSftConfig, type SftConfig } from '@rlhf/core';
import { addTrainingOptions, configFromCli, loadExamples, loadStartingModel, finishInterrupted, printSummary, progressReporter, trainWithSignals, type CommonFlags } from './train-common';

/** `rlhf sft`: supervised fine-tuning on demonstrations; the model (or with --lora-*, its PEFT adapter) lands in <out>/final. */
export function registerSft(program: Command): void {
  const cmd = program.command('sft').description('supervised fine-tuning on demonstrations (loss on completion tokens)');
  addTrainingOptions(cmd, SFT_CONFIG_SPEC).action(async (opts: Record<string, unknown> & CommonFlags) => {
    const config = configFromCli<SftConfig>('sft config', SFT_CONFIG_SPEC, validateSftConfig, opts);
    const { model, tokenizer, tokenizerOut, resume } = loadStartingModel(config.modelPath, opts);
    const train = await loadExamples(config.datasetPath, 'datasetPath', (r) => toSftExamples(tokenizer, r));
    const evalData = config.evalDatasetPath ? await loadExamples(config.evalDatasetPath, 'evalDatasetPath', (r) => toSftExamples(tokenizer, r)) : undefined;
    const progress = progressReporter();
    const trainer = new SftTrainer(model, train, { config, evalData, progress, resume, tokenizer });
    const result = await trainWithSignals(trainer, progress);
    // one writer under mpirun: rank 0 saves the final model and prints the summary (every rank holds the same weights)
    if (!trainer.isMainRank) return;
    if (result.interrupted) return finishInterrupted('sft', opts, result);
    const { steps, lastEval } = result;
    const final = join(trainer.outputDir, 'final');
    const saved = saveTrainedModel(final, model, { baseModelPath: config.modelPath, ...tokenizerOut });
    printSummary({ command: 'sft', final, saved, steps, eval: lastEval });
  });
}
