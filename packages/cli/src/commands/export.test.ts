import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGgufHeader } from '@rlhf/core';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { registerExport } from './export';

const shared = sharedDirForTests();
const tmp = mkdtempSync(join(tmpdir(), 'rlhf-cli-export-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function run(...args: string[]): Promise<string> {
  let out = '';
  const program = new Command('rlhf').exitOverride();
  registerExport(program, { out: (s) => (out += s) });
  await program.parseAsync(['node', 'rlhf', 'export', ...args]);
  return out;
}

// what llama.cpp computes from the file is checked in @rlhf/core (model/gguf-export.test.ts)
describe.skipIf(!shared)('rlhf export --format gguf (stories260K)', () => {
  it('writes a GGUF file with the model and its tokenizer, in the dtype asked', async () => {
    const out = join(tmp, 'stories.gguf');
    const said = await run('--model', sharedPath('models/stories260K/stories260K.bin'), '--out', out, '--dtype', 'f16');
    expect(said).toMatch(/^wrote .*stories\.gguf \(GGUF, F16, [\d.]+ MB\)\n$/);
    const h = parseGgufHeader(readFileSync(out), out);
    expect(h.metadata.get('general.name')).toBe('stories260K');
    expect(h.metadata.get('general.file_type')).toBe(1);
    expect((h.metadata.get('tokenizer.ggml.tokens') as string[]).length).toBe(512);
    expect(h.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.type).toBe('F16');
  });

  it('names a bad option, and writes nothing', async () => {
    const out = join(tmp, 'bad.gguf');
    const model = sharedPath('models/stories260K/stories260K.bin');
    await expect(run('--model', model, '--out', out, '--format', 'onnx')).rejects.toThrow('--format must be gguf, got "onnx"');
    await expect(run('--model', model, '--out', out, '--dtype', 'q4_0')).rejects.toThrow('--dtype must be f32, f16 or bf16, got "q4_0"');
    await expect(run('--model', join(tmp, 'none'), '--out', out)).rejects.toThrow(/does not exist/);
    expect(existsSync(out)).toBe(false);
  });
});
