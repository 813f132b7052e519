/**
 * `rlhf export --format gguf`: a model folder (a trained final/, a savePretrained folder, a hub download) or a
 * llama2.c .bin, with its tokenizer, as one GGUF file for llama.cpp, Ollama or LM Studio (core's exportGguf says
 * what is written and what is refused). Prints the file written and its size.
 */
import { statSync } from 'node:fs';
import type { Command } from 'commander';
import { exportGguf, fromPretrained, type GgufDType, loadTokenizerFile } from '@rlhf/core';
import { singleProcessOnly } from './train-common';

export interface ExportIo {
  out(s: string): void;
}

const defaultIo: ExportIo = { out: (s) => process.stdout.write(s) };

const DTYPES: Record<string, GgufDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

export function registerExport(program: Command, io: ExportIo = defaultIo): void {
  program
    .command('export')
    .description('write a model and its tokenizer as one file for other runtimes: --format gguf (llama.cpp, Ollama; Llama, Mistral, Qwen2, Qwen3)')
    .requiredOption('--model <path>', 'model folder (config.json + safetensors) or llama2.c checkpoint (.bin)')
    .requiredOption('--out <file>', 'the file to write (replaced atomically)')
    .option('--format <format>', 'gguf', 'gguf')
    .option('--dtype <dtype>', 'f32 | f16 | bf16: the matrices (norms stay f32)', 'f32')
    .option('--tokenizer <path>', 'tokenizer file or folder (default: the one beside the model)')
    .option('--name <name>', "general.name in the file (default: the model folder's name)")
    .action((o: { model: string; out: string; format: string; dtype: string; tokenizer?: string; name?: string }) => {
      singleProcessOnly('export');
      if (o.format !== 'gguf') throw new Error(`--format must be gguf, got ${JSON.stringify(o.format)}`);
      const dtype = DTYPES[o.dtype.toLowerCase()];
      if (!dtype) throw new Error(`--dtype must be f32, f16 or bf16, got ${JSON.stringify(o.dtype)}`);
      const pre = fromPretrained(o.model, { tokenizer: o.tokenizer ? loadTokenizerFile(o.tokenizer) : undefined });
      if (!pre.tokenizer) throw new Error(`${o.model} has no tokenizer beside it, and a GGUF file must hold one: pass --tokenizer`);
      const name = o.name ?? o.model.replace(/[/\\]+$/, '').split(/[/\\]/).pop()!.replace(/\.bin$/, '');
      exportGguf(pre.model, o.out, { tokenizer: pre.tokenizer, dtype, name });
      io.out(`wrote ${o.out} (GGUF, ${dtype}, ${(statSync(o.out).size / 1e6).toFixed(1)} MB)\n`);
    });
}
