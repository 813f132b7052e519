import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { answerMatch, formatMatch, jsonSchemaReward, lastNumber, lengthPenalty, normalizeNumber, softOverlongPunishment } from './reward-functions';
import type { RewardInputs } from './rewards';

/** Reward inputs for completions given as text (ids: one per character, the stop token 0 when stopped). */
function inp(completions: string[], rows: Record<string, unknown>[] = completions.map(() => ({})), stopped = completions.map(() => true)): RewardInputs {
  return {
    promptIds: completions.map(() => [1]),
    completionIds: completions.map((c, i) => [...Array.from(c, () => 5), ...(stopped[i] ? [0] : [])]),
    prompts: completions.map(() => 'q'),
    completions,
    rows,
    stopped,
    promptIndex: completions.map((_, i) => i),
  };
}

describe('answerMatch', () => {
  it('numbers normalised: thousands separators, currency, trailing period, 3.0 = 3; the last number by default', () => {
    const f = answerMatch();
    const rows = [{ answer: '1000' }, { answer: '5' }, { answer: '#### 3' }, { answer: '-2' }, { answer: '7' }, { answer: '7' }];
    const got = f(inp(['so 1,000.', 'it costs $5', 'first 2 then 3.0', 'x = -2', 'no answer here', '7 or 8'], rows));
    expect(Array.from(got as number[])).toEqual([1, 1, 1, 1, 0, 0]);
    expect(f.name).toBe('answerMatch');
  });

  it('a RegExp extractor (its first group, last match), another column, string comparison', () => {
    const f = answerMatch({ extract: /<answer>(.*?)<\/answer>/, column: 'solution', numeric: false, name: 'exact' });
    const got = f(inp(['<answer>Paris</answer>', '<answer>x</answer> <answer> paris </answer>', 'Paris'], [{ solution: 'paris' }, { solution: 'Paris' }, { solution: 'Paris' }]));
    expect(Array.from(got as number[])).toEqual([1, 1, 0]);
    expect(f.name).toBe('exact');
    const strict = answerMatch({ numeric: false, caseSensitive: true });
    expect(Array.from(strict(inp(['Paris', 'paris'], [{ answer: 'Paris' }, { answer: 'Paris' }])) as number[])).toEqual([1, 0]);
  });

  it('a row without the column, or a reference that is not a number, is an error naming it', () => {
    expect(() => answerMatch()(inp(['3'], [{ solution: '3' }]))).toThrow("answerMatch: the dataset row of training prompt 0 has no column 'answer' (its columns: solution)");
    expect(() => answerMatch()(inp(['3'], [{ answer: 'three' }]))).toThrow(/the reference answer "three" of training prompt 0 is not a number \(use numeric: false/);
  });

  it('an option it does not know, or one of the wrong type, is an error naming it (a plain-JS or JSON caller: no silent default)', () => {
    // a misspelt column would have read 'answer'; a string tolerance made every comparison false (all rewards 0)
    expect(() => answerMatch({ colum: 'solution' } as never)).toThrow("answerMatch: unknown option 'colum' (known: column, extract, numeric, tolerance, caseSensitive, name)");
    expect(() => answerMatch({ tolerance: 'abc' } as never)).toThrow("answerMatch: option 'tolerance' must be a finite number ≥ 0, got \"abc\"");
    expect(() => answerMatch({ tolerance: -1 })).toThrow("answerMatch: option 'tolerance' must be a finite number ≥ 0, got -1");
    expect(() => answerMatch({ numeric: 'false' } as never)).toThrow("answerMatch: option 'numeric' must be true or false, got \"false\"");
    expect(() => answerMatch({ caseSensitive: 1 } as never)).toThrow("answerMatch: option 'caseSensitive' must be true or false, got 1");
    expect(() => answerMatch({ column: 5 } as never)).toThrow("answerMatch: option 'column' must be a non-empty string, got 5");
    expect(() => answerMatch({ extract: '<a>(.*)</a>' } as never)).toThrow("answerMatch: option 'extract' must be a function or a RegExp, got \"<a>(.*)</a>\"");
    expect(() => answerMatch({ name: '' })).toThrow("answerMatch: option 'name' must be a non-empty string");
    expect(() => lengthPenalty({ maxTokens: 4, perToken: 0.1, maxToken: 2 } as never)).toThrow("lengthPenalty: unknown option 'maxToken' (known: maxTokens, perToken, name)");
    expect(() => formatMatch('^a' as never)).toThrow('formatMatch: pattern must be a RegExp, got "^a"');
    // what was accepted before still is
    expect(Array.from(answerMatch({ column: 'solution', numeric: true, tolerance: 0.5, caseSensitive: false, name: 'n', extract: undefined })(inp(['3.4'], [{ solution: '3' }])) as number[])).toEqual([1]);
  });

  it('lastNumber and normalizeNumber', () => {
    expect(lastNumber('a 1.5 b -20, c 3,400.25.')).toBe('3,400.25');
    expect(lastNumber('none')).toBeNull();
    expect([normalizeNumber('$1,234'), normalizeNumber('-$5'), normalizeNumber('42%'), normalizeNumber('1e3'), normalizeNumber('4.'), normalizeNumber('abc')]).toEqual([1234, -5, 42, 1000, 4, null]);
  });
});

describe('formatMatch, jsonSchemaReward, lengthPenalty, softOverlongPunishment', () => {
  it('formatMatch: 1 when the pattern matches (a global flag does not make it stateful)', () => {
    const f = formatMatch(/^<think>[\s\S]*<\/think>\s*<answer>[\s\S]*<\/answer>$/g, { name: 'format' });
    expect(Array.from(f(inp(['<think>a</think> <answer>1</answer>', '<think>a</think> <answer>1</answer>', '<answer>1</answer>'])) as number[])).toEqual([1, 1, 0]);
    expect(f.name).toBe('format');
  });

  it('jsonSchemaReward: valid JSON (fenced or not) that the zod schema accepts', () => {
    const f = jsonSchemaReward(z.object({ name: z.string(), age: z.number().int() }));
    const got = f(inp(['{"name": "a", "age": 3}', '```json\n{"name": "b", "age": 4}\n```', '{"name": "a", "age": 3.5}', '{"name": "a"', 'hello']));
    expect(Array.from(got as number[])).toEqual([1, 1, 0, 0, 0]);
    expect(() => jsonSchemaReward({} as never)).toThrow(/schema must have a safeParse/);
  });

  it('lengthPenalty: −perToken per token past maxTokens (the stop token not counted)', () => {
    const f = lengthPenalty({ maxTokens: 3, perToken: 0.1 });
    const got = f(inp(['ab', 'abcde', 'abcde'], undefined, [true, true, false]));
    expect(Array.from(got as number[]).map((x) => Number(x.toFixed(10)))).toEqual([0, -0.2, -0.2]);
    expect(() => lengthPenalty({ maxTokens: -1, perToken: 1 })).toThrow(/maxTokens/);
  });

  it('softOverlongPunishment: DAPO eq. 13 with L = 10, buffer 4', () => {
    const f = softOverlongPunishment({ maxCompletionLength: 10, bufferLength: 4 });
    const lengths = [3, 6, 7, 8, 10, 11];
    const i = inp(lengths.map(() => 'x'));
    i.completionIds = lengths.map((n) => Array.from({ length: n }, () => 5));
    expect(Array.from(f(i) as number[])).toEqual([0, 0, -0.25, -0.5, -1, -1]);
    expect(() => softOverlongPunishment({ maxCompletionLength: 10, bufferLength: 11 })).toThrow(/bufferLength must be an integer in \[1, maxCompletionLength 10\]/);
  });
});
