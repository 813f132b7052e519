import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { fromPretrained, loadRewardModel, readAdapterConfig, savePretrained, saveTrainedModel, type SaveDType } from '@rlhf/core';
import { printSummary } from './train-common';

export interface LoraMergeFlags {
  base?: string;
  adapter: string;
  out: string;
  dtype?: string;
}

const DTYPES: readonly SaveDType[] = ['F32', 'BF16', 'F16'];

/** Whether a folder holds tokenizer files to carry into the merged model. */
function hasTokenizer(dir: string): boolean {
  return readdirSync(dir).some((f) => f === 'tokenizer.json' || /^tok.*\.bin$|^tokenizer\.bin$/.test(f));
}

/**
 * `rlhf lora merge`: a PEFT LoRA adapter folded into its base (W + s·B·A) and written as a plain model folder that
 * any tool loads: a causal LM as transformers' save_pretrained writes it, a reward model adapter (task_type
 * SEQ_CLS, its score head in modules_to_save) as a reward model folder with its reward-normalization.json.
 */
export function mergeAdapterFolder(flags: LoraMergeFlags): Record<string, unknown> {
  const { adapter, out } = flags;
  if (!existsSync(adapter)) throw new Error(`--adapter ${adapter} does not exist`);
  if (flags.dtype !== undefined && !DTYPES.includes(flags.dtype as SaveDType)) throw new Error(`--dtype must be one of ${DTYPES.join(', ')}, got ${JSON.stringify(flags.dtype)}`);
  for (const [flag, p] of [['--adapter', adapter], ['--base', flags.base]] as const) {
    if (p && resolve(p) === resolve(out)) throw new Error(`--out ${out} is the ${flag} folder itself: write the merged model elsewhere`);
  }
  const cfg = readAdapterConfig(adapter);
  const tokenizerFrom = hasTokenizer(adapter) ? adapter : undefined;
  if (cfg.modulesToSave?.includes('score')) {
    const { model, normalization } = loadRewardModel(adapter, { base: flags.base });
    saveTrainedModel(out, model.model, {
      head: model.head,
      tokenizerFrom,
      files: normalization ? { 'reward-normalization.json': `${JSON.stringify(normalization, null, 2)}\n` } : {},
    });
    return { command: 'lora merge', kind: 'reward-model', out, adapter, base: flags.base ?? cfg.baseModelNameOrPath };
  }
  // the tokenizer fromPretrained found (the adapter folder's, else the base's) is written beside the merged weights
  const { model, tokenizer } = fromPretrained(adapter, { base: flags.base, mergeAdapter: true });
  savePretrained(model, out, { ...(flags.dtype ? { dtype: flags.dtype as SaveDType } : {}), ...(tokenizer ? { tokenizer } : {}) });
  return { command: 'lora merge', kind: 'causal-lm', out, adapter, base: flags.base ?? cfg.baseModelNameOrPath };
}

export function registerLora(program: Command): void {
  const lora = program.command('lora').description('LoRA adapters in PEFT format (what `rlhf sft|rm|ppo|dpo --lora-*` write)');
  lora
    .command('merge')
    .description("fold a PEFT LoRA adapter into its base model and write a plain model folder (a reward model's adapter: a reward model folder)")
    .requiredOption('--adapter <dir>', 'the adapter folder (adapter_config.json + adapter_model.safetensors)')
    .option('--base <path>', "the base model folder or llama2.c .bin (default: the adapter's base_model_name_or_path)")
    .requiredOption('--out <dir>', 'the folder to write the merged model to')
    .option('--dtype <dtype>', "a causal LM's weights on disk: F32, BF16 or F16 (default: the base's; a reward model is written in F32)")
    .action((opts: LoraMergeFlags) => {
      printSummary(mergeAdapterFolder(opts));
    });
}
