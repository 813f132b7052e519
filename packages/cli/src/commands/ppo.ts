import { join } from 'node:path';
import type { Command } from 'commander';
import {
  CausalLMWithValueHead,
  PPO_CONFIG_SPEC,
  PpoTrainer,
  fromPretrained,
  loadRewardModel,
  saveTrainedModel,
  toPrompts,
  validatePpoConfig,
  type PpoConfig,
} from '@rlhf/core';
import { addTrainingOptions, configFromCli, loadExamples, loadStartingModel, finishInterrupted, printSummary, progressReporter, sameTokenizer, trainWithSignals, type CommonFlags } from './train-common';

/**
 * `rlhf ppo`: PPO of the SFT policy against a reward model; the policy (without its value head; with --lora-*, its
 * PEFT adapter, whose reference is the base under it) lands in <out>/final.
 */
export function registerPpo(program: Command): void {
  const cmd = program.command('ppo').description('PPO against a reward model, with a per-token KL penalty to the frozen SFT reference');
  addTrainingOptions(cmd, PPO_CONFIG_SPEC).action(async (opts: Record<string, unknown> & CommonFlags) => {
    const config = configFromCli<PpoConfig>('ppo config', PPO_CONFIG_SPEC, validatePpoConfig, opts, ['modelPath', 'datasetPath', 'rewardModelPath']);
    const { model, tokenizer, tokenizerOut, stopTokens, resume } = loadStartingModel(config.modelPath, opts);
    const reward = loadRewardModel(config.rewardModelPath!);
    sameTokenizer(tokenizer, config.rewardModelPath!, 'rewardModelPath');
    if (config.refModelPath) sameTokenizer(tokenizer, config.refModelPath, 'refModelPath');
    const prompts = await loadExamples(config.datasetPath, 'datasetPath', (r) => toPrompts(tokenizer, r));
    const evalPrompts = config.evalDatasetPath ? await loadExamples(config.evalDatasetPath, 'evalDatasetPath', (r) => toPrompts(tokenizer, r)) : undefined;
    const refModel = config.refModelPath ? fromPretrained(config.refModelPath, { mergeAdapter: true }).model.freeze() : undefined;
    const policy = new CausalLMWithValueHead(model);
    const progress = progressReporter();
    const trainer = new PpoTrainer(policy, prompts, reward, {
      config,
      refModel,
      evalPrompts,
      // fromPretrained knows what ends a response for this model (llama2.c stories end at BOS, HF models at EOS)
      eosTokenId: stopTokens[0] ?? tokenizer.eosId,
      progress,
      resume,
      tokenizer,
    });
    const result = await trainWithSignals(trainer, progress);
    // one writer under mpirun: rank 0 saves the final model and prints the summary (every rank holds the same weights)
    if (!trainer.isMainRank) return;
    if (result.interrupted) return finishInterrupted('ppo', opts, result);
    const { steps, lastEval } = result;
    const final = join(trainer.outputDir, 'final');
    const saved = saveTrainedModel(final, model, { baseModelPath: config.modelPath, ...tokenizerOut });
    printSummary({ command: 'ppo', final, saved, steps, eval: lastEval, klCoef: trainer.klController.value });
  });
}
