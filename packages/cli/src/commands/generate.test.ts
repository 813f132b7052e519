import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT2, saveModelDir, saveTokenizer, trainByteLevelBpe } from '@rlhf/core';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { generationDefaults, registerGenerate } from './generate';

const shared = sharedDirForTests();

async function run(...args: string[]): Promise<string> {
  let out = '';
  const program = new Command('rlhf').exitOverride();
  registerGenerate(program, { out: (s) => (out += s) });
  await program.parseAsync(['node', 'rlhf', 'generate', ...args]);
  return out;
}

describe.skipIf(!shared)('rlhf generate (stories260K)', () => {
  const model = () => sharedPath('models/stories260K/stories260K.bin');
  const tok = () => sharedPath('models/stories260K/tok512.bin');

  it('greedy from BOS for 60 tokens prints exactly greedy-60.txt', async () => {
    const out = await run('--model', model(), '--tokenizer', tok(), '--temperature', '0', '--max-new-tokens', '60');
    expect(out).toBe(readFileSync(sharedPath('models/stories260K/greedy-60.txt'), 'utf8'));
  });

  it('sampling with a seed repeats exactly; a prompt is continued; --json gives ids and log-probs', async () => {
    const a = await run('--model', model(), '--prompt', 'Once upon a time', '--temperature', '0.8', '--top-p', '0.9', '--seed', '7', '--max-new-tokens', '20', '--json');
    const b = await run('--model', model(), '--prompt', 'Once upon a time', '--temperature', '0.8', '--top-p', '0.9', '--seed', '7', '--max-new-tokens', '20', '--json');
    expect(a).toBe(b);
    const j = JSON.parse(a);
    expect(j.text.startsWith('Once upon a time')).toBe(true);
    expect(j.tokens.length).toBe(j.logprobs.length);
    expect(j.logprobs.every((x: number) => x <= 0)).toBe(true);
  });

  it('--device emulated: the model runs on the device and prints what the cpu model path prints; a bad device is named', async () => {
    const args = ['--model', model(), '--prompt', 'Once upon a time', '--temperature', '0.8', '--top-k', '20', '--seed', '3', '--max-new-tokens', '24', '--json'];
    const dev = JSON.parse(await run(...args, '--device', 'emulated'));
    const prev = process.env.RLHF_DECODER;
    process.env.RLHF_DECODER = 'model'; // the cpu through the model's forward, as a device samples
    try {
      const cpu = JSON.parse(await run(...args));
      expect(dev).toEqual(cpu);
      expect(cpu.tokens.length).toBeGreaterThan(0);
    } finally {
      if (prev === undefined) delete process.env.RLHF_DECODER;
      else process.env.RLHF_DECODER = prev;
    }
    await expect(run('--model', model(), '--device', 'tpu')).rejects.toThrow(/--device must be one of cpu, cuda, emulated, got "tpu"/);
  });

  it('--stream prints the text piece by piece as it is sampled, adding up to the line printed without it', async () => {
    const pieces: string[] = [];
    const program = new Command('rlhf').exitOverride();
    registerGenerate(program, { out: (s) => pieces.push(s) });
    const args = ['--model', model(), '--tokenizer', tok(), '--prompt', 'Once upon a time', '--temperature', '0.9', '--seed', '5', '--max-new-tokens', '30'];
    await program.parseAsync(['node', 'rlhf', 'generate', ...args, '--stream']);
    expect(pieces.length).toBeGreaterThan(10); // a piece per token or so, not one line at the end
    expect(pieces[0]).toBe('Once upon a time');
    expect(pieces.join('')).toBe(await run(...args));
    // on the device too (each step's token comes down as it is sampled)
    const devPieces: string[] = [];
    const p2 = new Command('rlhf').exitOverride();
    registerGenerate(p2, { out: (s) => devPieces.push(s) });
    await p2.parseAsync(['node', 'rlhf', 'generate', ...args, '--stream', '--device', 'emulated']);
    expect(devPieces.length).toBeGreaterThan(10);
    await expect(run(...args, '--stream', '--json')).rejects.toThrow(/--stream prints text as it comes; --json prints one object at the end/);
  });

  it('--chat: the prompt as a user message through the chat template, the reply printed alone', async () => {
    const common = ['--model', model(), '--temperature', '0', '--max-new-tokens', '12', '--json'];
    const chat = JSON.parse(await run(...common, '--chat', '--chat-template', 'hh', '--system', 'A story.', '--prompt', 'Where is the cat?'));
    // the same ids as the conversation rendered by hand (BOS, then HH-RLHF's layout) and continued as plain text
    const rendered = 'A story.\n\nHuman: Where is the cat?\n\nAssistant:';
    const plain = JSON.parse(await run(...common, '--prompt', rendered));
    expect(chat.tokens).toEqual(plain.tokens);
    expect(chat.tokens.length).toBeGreaterThan(0);
    expect(plain.text).toBe(rendered + chat.text);
    await expect(run(...common, '--chat', '--prompt', 'hi')).rejects.toThrow(/the tokenizer has no chat template .*--chat-template NAME\|FILE/);
    await expect(run(...common, '--chat', '--chat-template', 'hh')).rejects.toThrow(/--chat needs a --prompt: the user's message/);
    await expect(run(...common, '--system', 'be brief', '--prompt', 'hi')).rejects.toThrow(/^--system applies to --chat only: add --chat$/);
    await expect(run(...common, '--chat-template', 'hh', '--prompt', 'hi')).rejects.toThrow(/^--chat-template applies to --chat only: add --chat$/);
  });

  it('names bad options', async () => {
    await expect(run('--model', model(), '--max-new-tokens', 'ten')).rejects.toThrow(/--max-new-tokens must be an integer/);
    await expect(run('--model', '/nonexistent/x.bin')).rejects.toThrow(/does not exist/);
    // values the sampler refuses are named by their flag
    await expect(run('--model', model(), '--max-new-tokens', '-1')).rejects.toThrow('--max-new-tokens must be an integer >= 0, got "-1"');
    await expect(run('--model', model(), '--temperature', '-0.5')).rejects.toThrow('--temperature must be a number >= 0, got "-0.5"');
    await expect(run('--model', model(), '--temperature', '1e309')).rejects.toThrow('--temperature must be a number, got "1e309"');
    await expect(run('--model', model(), '--top-k', '-1')).rejects.toThrow('--top-k must be an integer >= 0, got "-1"');
    await expect(run('--model', model(), '--top-p', '0')).rejects.toThrow('--top-p must be a number in (0, 1], got "0"');
    await expect(run('--model', model(), '--top-p', '1.5')).rejects.toThrow('--top-p must be a number in (0, 1], got "1.5"');
    // the generator has 32 bits of state: 2^32 would silently repeat seed 0's samples
    await expect(run('--model', model(), '--seed', '4294967296')).rejects.toThrow('--seed must be an integer in [0, 4294967295], got "4294967296"');
    await expect(run('--model', model(), '--seed', '-1')).rejects.toThrow(/--seed must be an integer in \[0, 4294967295\]/);
    await expect(run('--model', model(), '--seed', '1e20')).rejects.toThrow(/--seed must be an integer in/);
  });

  it('a prompt longer than the window is named as such (not as a negative --max-new-tokens); a long --max-new-tokens is capped', async () => {
    const long = 'Once upon a time there was a dog. '.repeat(80);
    await expect(run('--model', model(), '--prompt', long, '--max-new-tokens', '5')).rejects.toThrow(/^--prompt is \d+ tokens \(with BOS\) and the model's window is 512 positions: no room to generate; shorten the prompt$/);
    const j = JSON.parse(await run('--model', model(), '--temperature', '0', '--max-new-tokens', '100000', '--json'));
    expect(j.tokens.length).toBeLessThanOrEqual(511);
    expect(j.tokens.length).toBeGreaterThan(0);
  });
});

describe("rlhf generate: the model folder's generation_config.json", () => {
  const folder = (gen?: unknown) => {
    const d = mkdtempSync(join(tmpdir(), 'rlhf-gen-'));
    if (gen !== undefined) writeFileSync(join(d, 'generation_config.json'), typeof gen === 'string' ? gen : JSON.stringify(gen));
    return d;
  };

  it('gives the sampling defaults as transformers takes them; keys it does not implement are refused by name unless ignored', () => {
    expect(generationDefaults(folder(), false)).toEqual({});
    expect(generationDefaults('/no/such/model.bin', false)).toEqual({});
    // Llama 3 Instruct's file
    const llama3 = { bos_token_id: 128000, do_sample: true, eos_token_id: [128001, 128008, 128009], max_length: 4096, temperature: 0.6, top_p: 0.9, transformers_version: '4.45.0' };
    expect(generationDefaults(folder(llama3), false)).toEqual({ temperature: 0.6, topK: undefined, topP: 0.9 });
    // do_sample false or absent: greedy, as transformers' generate()
    expect(generationDefaults(folder({ temperature: 0.6, top_p: 0.9 }), false)).toEqual({ temperature: 0 });
    expect(generationDefaults(folder({ do_sample: false, repetition_penalty: 1.0, num_beams: 1 }), false)).toEqual({ temperature: 0 });
    // Qwen2.5 Instruct's: a repetition penalty this command does not apply
    const qwen = { do_sample: true, repetition_penalty: 1.05, temperature: 0.7, top_p: 0.8, top_k: 20, eos_token_id: [151645, 151643] };
    const d = folder(qwen);
    expect(() => generationDefaults(d, false)).toThrow(/generation_config\.json: repetition_penalty = 1\.05: not implemented by rlhf generate.*pass --ignore-generation-config/);
    expect(generationDefaults(d, true)).toEqual({});
    expect(() => generationDefaults(folder({ do_sample: true, num_beams: 4, min_p: 0.1 }), false)).toThrow(/num_beams = 4, min_p = 0\.1: not implemented/);
    expect(() => generationDefaults(folder({ do_sample: true, temperature: -1 }), false)).toThrow(/temperature = -1 is not a valid value/);
    expect(() => generationDefaults(folder('{oops'), false)).toThrow(/generation_config\.json: not JSON/);
  });

  it('a folder whose file says do_sample false decodes greedily; a flag still wins', async () => {
    const tok = trainByteLevelBpe(['the sky is blue. the grass is green. once upon a time there was a cat.'.repeat(3)], { vocabSize: 280 });
    const model = new GPT2({ vocabSize: tok.vocabSize, nPositions: 64, nEmbd: 32, nLayer: 1, nHead: 2 }, { seed: 4 });
    const d = join(folder(), 'model');
    saveModelDir(d, model.hfConfig(), model.stateDict());
    saveTokenizer(d, tok);
    writeFileSync(join(d, 'generation_config.json'), JSON.stringify({ do_sample: false, eos_token_id: tok.eosId }));
    const args = ['--model', d, '--prompt', 'the sky', '--max-new-tokens', '12', '--seed', '3', '--json'];
    const byFile = JSON.parse(await run(...args));
    expect(byFile).toEqual(JSON.parse(await run(...args, '--temperature', '0')));
    const sampled = JSON.parse(await run(...args, '--temperature', '1', '--ignore-generation-config'));
    expect(sampled).toEqual(JSON.parse(await run(...args, '--ignore-generation-config')));
    expect(sampled.tokens).not.toEqual(byFile.tokens);
  });
});
