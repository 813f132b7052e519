import { answerMatch, trainByteLevelBpe } from '@rlhf/core';
import { describe, expect, it } from 'vitest';
import { ARITHMETIC_QUICK_SIZES, ARITHMETIC_SIZES } from './arithmetic-demo';
import { CONTRACTOR_SLIPS, MAX_OPERAND, answered, contractorAnswer, drawProblem, splitProblems, webAnswer } from './arithmetic';
import { makeRng } from './task';

describe('arithmetic word problems', () => {
  it('each problem states its one-digit operands and its answer is theirs', () => {
    const rng = makeRng(7);
    const answers = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const p = drawProblem(rng);
      expect(p.text.startsWith('Question: ')).toBe(true);
      expect(p.text.endsWith('\nAnswer:')).toBe(true);
      expect(p.text).toContain(` ${p.a} `);
      expect(p.text).toContain(` ${p.b}`);
      expect(p.answer).toBe(p.op === '+' ? p.a + p.b : p.a - p.b);
      expect(Math.min(p.a, p.b)).toBeGreaterThanOrEqual(1);
      expect(Math.max(p.a, p.b)).toBeLessThanOrEqual(MAX_OPERAND);
      answers.add(p.answer);
    }
    expect([...answers].sort((x, y) => x - y)).toEqual(Array.from({ length: 18 }, (_, i) => i + 1)); // 1 to 18, every one
  });

  it('held-out problems are distinct and never drawn for training; the same seed gives the same split', () => {
    const a = splitProblems(makeRng(3), 256);
    expect(new Set(a.held.map((p) => p.text)).size).toBe(256);
    const held = new Set(a.held.map((p) => p.text));
    const train = a.drawTrain(makeRng(4), 20000);
    expect(train.some((p) => held.has(p.text))).toBe(false);
    expect(splitProblems(makeRng(3), 256).held).toEqual(a.held);
  });

  it("contractors slip at CONTRACTOR_SLIPS' rates, to the other operation or one off, and add a subtraction more often than they get it right; the web is right about half of the time", () => {
    const rng = makeRng(11);
    const problems = Array.from({ length: 20000 }, () => drawProblem(rng));
    const answers = problems.map((p) => contractorAnswer(rng, p));
    for (const op of ['+', '-'] as const) {
      const idx = problems.map((p, i) => (p.op === op ? i : -1)).filter((i) => i >= 0);
      const share = (f: (i: number) => boolean) => idx.filter(f).length / idx.length;
      const other = (i: number) => (op === '+' ? Math.abs(problems[i].a - problems[i].b) : problems[i].a + problems[i].b);
      const right = share((i) => answers[i] === problems[i].answer);
      const otherOperation = share((i) => answers[i] === other(i) && other(i) !== problems[i].answer);
      const oneOff = share((i) => Math.abs(answers[i] - problems[i].answer) === 1);
      const s = CONTRACTOR_SLIPS[op];
      expect(Math.abs(right - (1 - s.otherOperation - s.oneOff))).toBeLessThan(0.02);
      expect(Math.abs(otherOperation - s.otherOperation)).toBeLessThan(0.02);
      // a - b + 1 = a + b only when b = 1/2: never; a + b - 1 = |a - b| only when 2 min(a, b) = 1: never
      expect(Math.abs(oneOff - s.oneOff)).toBeLessThan(0.02);
      if (op === '-') expect(otherOperation).toBeGreaterThan(right);
    }
    problems.forEach((p, i) => {
      const other = p.op === '+' ? Math.abs(p.a - p.b) : p.a + p.b;
      expect([p.answer, other, p.answer - 1, p.answer + 1]).toContain(answers[i]);
    });
    const web = problems.filter((p) => webAnswer(rng, p) === p.answer).length / problems.length;
    expect(web).toBeGreaterThan(0.5);
    expect(web).toBeLessThan(0.56); // half right, plus a random number that happens to be right (1 in 19)
  });

  it("every answer (0 to 18, after a space) is one token of the demo's BPE, trained on the web corpus as stage 0 trains it", () => {
    for (const sizes of [ARITHMETIC_SIZES, ARITHMETIC_QUICK_SIZES]) {
      for (const seed of [1, 2, 3]) {
        const split = splitProblems(makeRng(seed), 256);
        const rng = makeRng(seed + 100);
        const web = split.drawTrain(rng, sizes.webDocs!).map((p) => answered(p, webAnswer(rng, p)));
        const tokenizer = trainByteLevelBpe(web.map((d) => d.prompt + d.completion), { vocabSize: sizes.vocabSize! });
        for (let n = 0; n <= 2 * MAX_OPERAND; n++) expect([n, tokenizer.encode(` ${n}`).length]).toEqual([n, 1]);
      }
    }
  });

  it("core's answerMatch scores a completion by the problem's answer column, as the demo writes its prompts", () => {
    const match = answerMatch({ column: 'answer' });
    const rows = [{ answer: '12' }, { answer: '12' }, { answer: '7' }];
    const got = match({ promptIds: [[], [], []], completionIds: [[], [], []], prompts: ['', '', ''], completions: ['12', ' 13', 'It is 7'], rows, stopped: [true, true, true], promptIndex: [0, 1, 2] });
    expect(Array.from(got as ArrayLike<number>)).toEqual([1, 0, 1]);
  });
});
