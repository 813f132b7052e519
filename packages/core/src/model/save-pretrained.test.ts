/**
 * savePretrained as an SDK user saves a model: with its tokenizer (every kind loadTokenizer builds), a reward
 * model with its normalisation (what loadRewardModel and `rlhf eval reward-accuracy` read), written as a whole
 * folder atomically; and fromPretrained's result as generate's defaults.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { afterAll, describe, expect, it } from 'vitest';
import { generate } from '../generation/generate';
import { saveHfCheckpoint } from '../io/hf-checkpoint';
import { trainByteLevelBpe } from '../tokenizers/bpe-trainer';
import { loadTokenizer, saveTokenizer } from '../tokenizers/load-tokenizer';
import type { Tokenizer } from '../tokenizers/types';
import { loadRewardModel, saveModelDir } from '../trainers/model-dirs';
import { scoreCompletions } from '../trainers/reward-trainer';
import { GPT2 } from './gpt2';
import { RewardModel } from './heads';
import { fromPretrained, savePretrained } from './pretrained';

const tmp = mkdtempSync(join(tmpdir(), 'rlhf-core-save-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const text = 'the cat sat on the mat. the dog sat on the log. a cat and a dog. ';
const gpt2 = (V: number, seed = 4) => new GPT2({ vocabSize: V, nPositions: 16, nEmbd: 8, nLayer: 1, nHead: 2 }, { seed });
const probe = 'the dog sat on a mat';
/** The same tokenizer in behaviour (a plain byte-level BPE tokenizer.json reloads as our engine whichever served it). */
const same = (a: Tokenizer, b: Tokenizer) => {
  expect(b.vocabSize).toBe(a.vocabSize);
  expect([b.bosId, b.eosId, b.padId, b.chatTemplate]).toEqual([a.bosId, a.eosId, a.padId, a.chatTemplate]);
  expect(b.encode(probe, { addBos: true, addEos: true })).toEqual(a.encode(probe, { addBos: true, addEos: true }));
};

describe('savePretrained', () => {
  it('writes the tokenizer it is given, of every kind, and fromPretrained finds it; without one it says so when asked', () => {
    const bpe = trainByteLevelBpe(text, { vocabSize: 280 });
    const bpeDir = join(tmp, 'bpe-tok');
    mkdirSync(bpeDir);
    saveTokenizer(bpeDir, bpe);
    const hf = loadTokenizer(join(bpeDir, 'tokenizer.json'), { engine: 'hf' }); // @huggingface/tokenizers behind it
    const toks: Tokenizer[] = [bpe, hf];
    if (sharedDirForTests()) toks.push(loadTokenizer(sharedPath('models/stories260K/tok512.bin')));
    for (const tok of toks) {
      const dir = join(tmp, `with-${tok.kind}`);
      savePretrained(gpt2(tok.vocabSize), dir, { tokenizer: tok });
      const back = fromPretrained(dir, { requireTokenizer: true });
      same(tok, back.tokenizer);
      // config.json names the tokenizer's special ids, as Hugging Face's do: generation stops at its EOS
      expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))).toMatchObject({ bos_token_id: tok.bosId, eos_token_id: tok.eosId });
      expect(back.stopTokens).toEqual(tok.eosId === undefined ? [] : [tok.eosId]);
    }
    const bare = join(tmp, 'bare');
    savePretrained(gpt2(bpe.vocabSize), bare);
    expect(fromPretrained(bare).tokenizer).toBeUndefined();
    expect(() => fromPretrained(bare, { requireTokenizer: true })).toThrow(
      /^fromPretrained: no tokenizer found for \S+bare \(looked in \S+bare for tokenizer\.json, tokenizer\.bin or one tok\*\.bin\); pass \{ tokenizer: PATH \}, or save the model with savePretrained\(model, dir, \{ tokenizer \}\)$/,
    );
  });

  it('a RewardModel with its normalisation: loadRewardModel reads it back, scoring the same', () => {
    const tok = trainByteLevelBpe(text, { vocabSize: 270 });
    const rm = new RewardModel(gpt2(tok.vocabSize, 7));
    const dir = join(tmp, 'rm');
    const normalization = { mean: 0.25, std: 2, count: 10 };
    savePretrained(rm, dir, { tokenizer: tok, normalization });
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).num_labels).toBe(1);
    const back = loadRewardModel(dir);
    expect(back.normalization).toEqual(normalization);
    const items = [{ prompt: tok.encode('the cat', { addBos: true }), completion: tok.encode(' sat.', { addEos: true }) }];
    expect(scoreCompletions(back.model, items)).toEqual(scoreCompletions(rm, items));
    same(tok, loadTokenizer(dir));
    expect(() => savePretrained(gpt2(tok.vocabSize), join(tmp, 'lm-norm'), { normalization })).toThrow(/normalization is for a RewardModel/);
  });

  it('writes the folder as a whole: a failed save leaves the old folder (or none), a model folder is replaced, other folders are refused', () => {
    const m = gpt2(30);
    const dir = join(tmp, 'final');
    // a save that fails after config.json (as a full disk would) must not leave a folder of config.json alone
    const broken = new Map([['wte.weight', { dtype: 'F32' as const, shape: [3], data: new Float32Array(2) }]]);
    expect(() => saveModelDir(dir, m.hfConfig(), broken)).toThrow(/data has 2 elements but shape \[3\] needs 3/);
    expect(existsSync(dir)).toBe(false);
    savePretrained(m, dir);
    writeFileSync(join(dir, 'stale.txt'), 'from an earlier save');
    expect(() => saveModelDir(dir, m.hfConfig(), broken)).toThrow(/needs 3/);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors', 'stale.txt']); // untouched
    savePretrained(m, dir);
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
    expect(readdirSync(tmp).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    const notModel = join(tmp, 'mine');
    mkdirSync(notModel);
    writeFileSync(join(notModel, 'notes.txt'), 'mine');
    expect(() => savePretrained(m, notModel)).toThrow(/the folder holds other files \(notes\.txt\) and no config\.json; it would be replaced as a whole/);
    expect(readdirSync(notModel)).toEqual(['notes.txt']);
  });
});

describe('generate(fromPretrained(...))', () => {
  it("stops at the checkpoint's stop tokens and decodes, as the CLI does; a bare model knows only its options", () => {
    const tok = trainByteLevelBpe(text, { vocabSize: 270 });
    const m = gpt2(tok.vocabSize, 9);
    const prompt = tok.encode('the cat', { addBos: true });
    const first = generate(m, [prompt], { temperature: 0, maxNewTokens: 1 }).tokens[0][0];
    const dir = join(tmp, 'eos');
    // a Hugging Face folder whose config names the model's first greedy token as its end of sequence
    saveHfCheckpoint(dir, { ...m.hfConfig(), eos_token_id: first }, m.stateDict());
    saveTokenizer(dir, tok);
    const pre = fromPretrained(dir);
    expect(pre.stopTokens).toEqual([first]);
    const g = generate(pre, [prompt], { temperature: 0, maxNewTokens: 8 });
    expect(g.tokens[0]).toEqual([first]);
    expect(g.stopped).toEqual([true]);
    expect(typeof g.text![0]).toBe('string');
    // given explicitly, stopTokens win (here: none)
    expect(generate(pre, [prompt], { temperature: 0, maxNewTokens: 8, stopTokens: [] }).tokens[0]).toHaveLength(8);
    const bare = generate(pre.model, [prompt], { temperature: 0, maxNewTokens: 8 });
    expect([bare.tokens[0].length, bare.text]).toEqual([8, undefined]);
  });
});
