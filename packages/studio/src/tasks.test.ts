import { describe, expect, it } from 'vitest';
import { InvalidSubmission, MAX_TEXT, validateSubmission } from './tasks';

describe('validateSubmission', () => {
  it('accepts a ranking with ties and keeps only the ranking', () => {
    expect(validateSubmission('ranking', 3, { ranking: [[2], [0, 1]], extra: 'x' })).toEqual({ task: 'ranking', ranking: [[2], [0, 1]] });
  });
  it.each([
    [{ ranking: [[0], [1]] }, 'missing 2'],
    [{ ranking: [[0], [0], [1, 2]] }, 'appears twice'],
    [{ ranking: [[0, 1, 3]] }, 'outside'],
    [{ ranking: [[0], [], [1, 2]] }, 'empty'],
    [{ ranking: '0,1,2' }, 'list of tiers'],
    [{ ranking: [[0.5], [1, 2]] }, 'outside'],
  ])('rejects the ranking %j', (body, msg) => {
    expect(() => validateSubmission('ranking', 3, body)).toThrow(msg);
  });
  it('enforces text types, emptiness and length', () => {
    expect(() => validateSubmission('response', 0, { response: 3 })).toThrow(InvalidSubmission);
    expect(() => validateSubmission('response', 0, { response: '  \n' })).toThrow('empty');
    expect(() => validateSubmission('response', 0, { response: 'x'.repeat(MAX_TEXT + 1) })).toThrow('at most');
    expect(validateSubmission('response', 0, { response: 'x'.repeat(MAX_TEXT) })).toEqual({ task: 'response', response: 'x'.repeat(MAX_TEXT) });
    expect(() => validateSubmission('prompt_response', 0, { prompt: 'p' })).toThrow('response must be text');
    expect(() => validateSubmission('prompt', 0, [])).toThrow('JSON object');
  });
  it('checks pairwise choices and Likert scores', () => {
    expect(validateSubmission('pairwise', 2, { choice: 1, reason: 'clearer' })).toEqual({ task: 'pairwise', choice: 1, reason: 'clearer' });
    expect(() => validateSubmission('pairwise', 2, { choice: 2, reason: 'x' })).toThrow('A or B');
    expect(() => validateSubmission('pairwise', 2, { choice: 0, reason: '' })).toThrow('reason is empty');
    expect(validateSubmission('likert', 3, { scores: [1, 7, 4] })).toEqual({ task: 'likert', scores: [1, 7, 4] });
    expect(() => validateSubmission('likert', 3, { scores: [1, 7] })).toThrow('one score per completion');
    expect(() => validateSubmission('likert', 3, { scores: [1, 8, 4] })).toThrow('score 2');
    expect(() => validateSubmission('likert', 3, { scores: [1, null, 4] })).toThrow('score 2');
  });
});
