import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedDirForTests } from '@rlhf/data';
import { describe, expect, it } from 'vitest';
import { compareToReferences, loadPreamble, loadTruthfulQaCsv, loadTruthfulQaJson, mc1Score, mc2Score, scoreTruthfulQaAnswers, truthfulQaPrompt } from './truthfulqa';

const shared = sharedDirForTests();
const tmp = mkdtempSync(join(tmpdir(), 'rlhf-eval-tqa-'));

describe('TruthfulQA scores', () => {
  it('MC1 is 1 only when the top choice is the true one', () => {
    expect(mc1Score([-1, -2, -3], [1, 0, 0])).toBe(1);
    expect(mc1Score([-2, -1, -3], [1, 0, 0])).toBe(0);
  });

  it('MC2 is the normalised probability mass on the true choices', () => {
    // probabilities 0.5, 0.3, 0.2 (as log-likelihoods, shifted by a constant that must cancel)
    const ll = [Math.log(0.5) - 40, Math.log(0.3) - 40, Math.log(0.2) - 40];
    expect(mc2Score(ll, [1, 0, 1])).toBeCloseTo(0.7, 12);
    expect(mc2Score(ll, [0, 1, 0])).toBeCloseTo(0.3, 12);
    // unnormalised: exp(−1), exp(−2) over their sum
    expect(mc2Score([-1, -2], [1, 0])).toBeCloseTo(Math.exp(-1) / (Math.exp(-1) + Math.exp(-2)), 12);
  });

  it('generation scores: max over true refs, diff and acc', () => {
    const sim = (h: string, r: string) => (h === r ? 1 : h[0] === r[0] ? 0.5 : 0);
    expect(compareToReferences('abc', ['abc', 'x'], ['aaa'], sim)).toEqual({ maxTrue: 1, maxFalse: 0.5, diff: 0.5, acc: 1 });
    expect(compareToReferences('aaa', ['x'], ['aaa'], sim)).toEqual({ maxTrue: 0, maxFalse: 1, diff: -1, acc: 0 });
    const items = [{ question: 'q', mc1: { choices: ['t', 'f'], labels: [1, 0] }, mc2: { choices: ['t', 'f'], labels: [1, 0] }, bestAnswer: 'Paris', correctAnswers: ['Paris is the capital'], incorrectAnswers: ['London is the capital'], category: '', file: 'x', line: 1 }];
    const s = scoreTruthfulQaAnswers(items, ['Paris is the capital']);
    expect(s.metrics.bleu.max.value).toBeCloseTo(100, 8);
    expect(s.metrics.rouge1.acc.value).toBe(1);
    // "I have no comment." counts as a true reference
    expect(scoreTruthfulQaAnswers(items, ['I have no comment.']).metrics.rougeL.max.value).toBeCloseTo(1, 12);
  });

  it('the prompt is the preamble, a blank line, then Q/A', () => {
    expect(truthfulQaPrompt('Q: a\nA: b', 'Why?')).toBe('Q: a\nA: b\n\nQ: Why?\nA:');
  });
});

describe('TruthfulQA loaders', () => {
  it.runIf(shared)('read the JSON layout and the CSV; the CSV builds the same MC1/MC2 sets', () => {
    const json = loadTruthfulQaJson(join(shared!, 'data/truthfulqa/hitz_en_validation.json'), { limit: 5 });
    const csv = loadTruthfulQaCsv(join(shared!, 'data/truthfulqa/TruthfulQA.csv'), { limit: 5 });
    expect(json).toHaveLength(5);
    expect(csv).toHaveLength(5);
    expect(csv[0].question).toBe(json[0].question);
    expect(csv[0].mc1).toEqual(json[0].mc1);
    // the CSV is a later revision (row 1 gained a correct answer), so every JSON choice must be in the CSV's
    // MC2 set with the same label, and the CSV's labels must mark exactly its correct answers
    json[0].mc2.choices.forEach((c, j) => expect(csv[0].mc2.labels[csv[0].mc2.choices.indexOf(c)]).toBe(json[0].mc2.labels[j]));
    expect(csv[0].mc2.labels.filter((l) => l === 1)).toHaveLength(csv[0].correctAnswers.length);
    expect(json[0].mc1.labels[0]).toBe(1);
  });

  it.runIf(shared)('the preamble is the six few-shot pairs', () => {
    const p = loadPreamble(join(shared!, 'data/truthfulqa/hitz_en_train.json'));
    expect(p.split('\n\n')).toHaveLength(6);
    expect(p.startsWith('Q: What is human life expectancy in the United States?\nA: Human life expectancy')).toBe(true);
  });

  it('CSV quoting: commas, doubled quotes and line breaks inside a field', () => {
    const f = join(tmp, 'q.csv');
    writeFileSync(f, 'Type,Category,Question,Best Answer,Best Incorrect Answer,Correct Answers,Incorrect Answers,Source\nA,C,"Is ""x"", y?",Yes,No,"Yes; Sure","No; Never,\never",s\n');
    const [it0] = loadTruthfulQaCsv(f);
    expect(it0.question).toBe('Is "x", y?');
    expect(it0.mc1.choices).toEqual(['Yes', 'No', 'Never,\never']);
    expect(it0.mc2).toEqual({ choices: ['Yes', 'Sure', 'No', 'Never,\never'], labels: [1, 1, 0, 0] });
  });

  it('bad input names the file, line and field', () => {
    const f = join(tmp, 'bad.json');
    writeFileSync(f, JSON.stringify([{ question: 'ok', mc1_targets: { choices: ['a', 'b'], labels: [1, 0] }, mc2_targets: { choices: ['a'], labels: [1] } }, { question: 'q', mc1_targets: { choices: ['a', 'b'], labels: [1, 1] }, mc2_targets: { choices: ['a'], labels: [1] } }]));
    expect(() => loadTruthfulQaJson(f)).toThrow(`${f}:2: mc1_targets.labels: must have exactly one 1, has 2`);
    writeFileSync(f, JSON.stringify([{ question: 3 }]));
    expect(() => loadTruthfulQaJson(f)).toThrow(/bad\.json:1: mc1_targets\.choices: expected an array of strings/);
    const c = join(tmp, 'bad.csv');
    writeFileSync(c, 'Type,Category,Question,Best Answer,Best Incorrect Answer,Correct Answers,Incorrect Answers,Source\nA,C,Q?,Yes,No,Yes,No,s\nA,C,,Yes,No,Yes,No,s\n');
    expect(() => loadTruthfulQaCsv(c)).toThrow(`${c}:3: Question: is empty`);
    writeFileSync(c, 'Type,Category,Question,Best Answer\nA,C,Q?,Yes\n');
    expect(() => loadTruthfulQaCsv(c)).toThrow(/bad\.csv:1: Best Incorrect Answer: column is missing/);
  });
});
