import type { DataRecord } from '@rlhf/data';
import { describe, expect, it } from 'vitest';
import { trainByteLevelBpe } from '../tokenizers/bpe-trainer';
import { encodePromptCompletion, toDpoExamples, toKtoExamples, toPrompts, toRankedExamples, toSftExamples } from './records';

const tok = trainByteLevelBpe(['the sky is blue. the grass is green. what colour is the sky? hello there, how are you?'], { vocabSize: 300 });
const bos = tok.bosId!;
const eos = tok.eosId!;

describe('records to token examples', () => {
  it('plain text: BOS + prompt, then the completion as a continuation with EOS', () => {
    const e = encodePromptCompletion(tok, 'the sky is', ' blue.');
    expect(e.prompt[0]).toBe(bos);
    expect(e.completion.at(-1)).toBe(eos);
    expect(tok.decode([...e.prompt, ...e.completion])).toBe('the sky is blue.');
    const [s] = toSftExamples(tok, [{ kind: 'demonstration', prompt: 'the sky is', completion: ' blue.' }]);
    expect(s.ids).toEqual([...e.prompt, ...e.completion]);
    expect(Array.from(s.lossMask!)).toEqual([...e.prompt.map(() => 0), ...e.completion.map(() => 1)]);
  });

  it('conversational: the chat template, the completion being the last assistant turn', () => {
    const msgs = [{ role: 'user' as const, content: 'what colour is the sky?' }];
    const e = encodePromptCompletion(tok, msgs, [{ role: 'assistant', content: 'blue.' }]);
    expect(tok.decode(e.completion)).toBe('blue.');
    // the prompt is exactly what generation starts from: the template with the assistant header
    expect(e.prompt).toEqual(toPrompts(tok, [{ kind: 'prompt', prompt: msgs }])[0]);
    expect(() => encodePromptCompletion(tok, msgs, [{ role: 'user', content: 'x' }])).toThrow(/one 'assistant' message/);
  });

  it('a whole conversation with no prompt (trl-lm messages): one template rendering, loss on every assistant turn', () => {
    const conv = [
      { role: 'user' as const, content: 'hello there' },
      { role: 'assistant' as const, content: 'how are you?' },
      { role: 'user' as const, content: 'what colour is the sky?' },
      { role: 'assistant' as const, content: 'blue.' },
    ];
    const [s] = toSftExamples(tok, [{ kind: 'demonstration', completion: conv }]);
    const mask = Array.from(s.lossMask!);
    expect(mask.length).toBe(s.ids.length);
    // the tokens under the mask, in runs, are exactly the two assistant turns
    const runs: number[][] = [];
    mask.forEach((m, t) => {
      if (!m) return;
      if (t > 0 && mask[t - 1]) runs.at(-1)!.push(s.ids[t]);
      else runs.push([s.ids[t]]);
    });
    expect(runs.map((r) => tok.decode(r).trim())).toEqual(['how are you?', 'blue.']);
    // its last turn is the same tokens as the prompt + completion form of the same conversation
    const last = encodePromptCompletion(tok, conv.slice(0, 3), [conv[3]]);
    expect(Array.from(s.ids).slice(0, last.prompt.length + last.completion.length)).toEqual([...last.prompt, ...last.completion]);
    expect(() => toSftExamples(tok, [{ kind: 'demonstration', completion: [{ role: 'user', content: 'hello' }] }])).toThrow(
      /record 0: the conversation \[user\] has no assistant turn/,
    );
  });

  it('comparisons become ranked examples (ties share a rank) and DPO pairs (every ordered pair)', () => {
    const c: DataRecord = { kind: 'comparison', prompt: 'the sky is', completions: [' green.', ' blue.', ' blue!'], ranking: [[1, 2], [0]] };
    const [r] = toRankedExamples(tok, [c]);
    expect(r.ranks).toEqual([1, 0, 0]);
    expect(r.completions.map((x) => tok.decode(Array.from(x)))).toEqual([' green.', ' blue.', ' blue!']);
    const pairs = toDpoExamples(tok, [c]);
    expect(pairs.map((p) => [tok.decode(Array.from(p.chosen)), tok.decode(Array.from(p.rejected))])).toEqual([[' blue.', ' green.'], [' blue!', ' green.']]);
    const p: DataRecord = { kind: 'preference', prompt: 'hello', chosen: ' there', rejected: ' you' };
    expect(toRankedExamples(tok, [p])[0].ranks).toEqual([0, 1]);
    expect(tok.decode(Array.from(toDpoExamples(tok, [p])[0].chosen))).toBe(' there');
  });

  it('feedback (unpaired, TRL {prompt, completion, label}) becomes KTO examples; pairs and feedback name the other lossType', () => {
    const f: DataRecord = { kind: 'feedback', prompt: 'the sky is', completion: ' blue.', label: true };
    const g: DataRecord = { kind: 'feedback', prompt: [{ role: 'user', content: 'what colour is the sky?' }], completion: [{ role: 'assistant', content: 'green.' }], label: false };
    const [a, b] = toKtoExamples(tok, [f, g]);
    const e = encodePromptCompletion(tok, 'the sky is', ' blue.');
    expect(a).toEqual({ prompt: e.prompt, completion: e.completion, label: true });
    expect(tok.decode(Array.from(b.completion))).toBe('green.');
    expect(b.label).toBe(false);
    expect(() => toKtoExamples(tok, [f, { kind: 'preference', id: 'q2', prompt: 'a', chosen: 'b', rejected: 'c' }])).toThrow(
      /record 1 \(q2\): kind 'preference' cannot be used here; expected 'feedback' \(prompt, completion, label\) \(lossType 'kto' learns from unpaired labels; unpair the pairs first: rlhf data convert FILE --to trl-unpaired -o OUT.jsonl, or choose a paired lossType\)/,
    );
    expect(() => toDpoExamples(tok, [f])).toThrow(/record 0: kind 'feedback' cannot be used here; expected 'preference' or 'comparison' \(unpaired good\/bad feedback trains with lossType 'kto'\)/);
  });

  it('names the record and the problem', () => {
    expect(() => toSftExamples(tok, [{ kind: 'demonstration', completion: 'x' }, { kind: 'prompt', id: 'p7', prompt: 'y' }])).toThrow(
      /record 1 \(p7\): kind 'prompt' cannot be used here; expected 'demonstration'$/,
    );
    // preference data for SFT: the error says how to turn it into demonstrations
    expect(() => toSftExamples(tok, [{ kind: 'preference', prompt: 'a', chosen: 'b', rejected: 'c' }])).toThrow(
      /record 0: kind 'preference' cannot be used here; expected 'demonstration' \(to fine-tune on the preferred completions, convert first: rlhf data convert FILE --to rlhf --preferred -o OUT.jsonl\)/,
    );
    expect(() => toRankedExamples(tok, [{ kind: 'comparison', prompt: 'a', completions: ['b', 'c'], ranking: [[0]] }])).toThrow(/record 0: not a permutation/);
  });
});
