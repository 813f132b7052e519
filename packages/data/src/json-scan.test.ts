import { describe, expect, it } from 'vitest';
import { duplicateKeyPath, splitJsonArray } from './json-scan';

describe('duplicateKeyPath', () => {
  it('finds a key given twice, with its path, at any depth', () => {
    expect(duplicateKeyPath('{"prompt":"p","chosen":"a","chosen":"c","rejected":"b"}')).toBe('chosen');
    expect(duplicateKeyPath('{"messages":[{"role":"user","content":"x"},{"role":"user","role":"assistant","content":"y"}]}')).toBe('messages[1].role');
    expect(duplicateKeyPath('{"a":{"b":[1,{"c":1,"d":{"e":1,"e":2}}]}}')).toBe('a.b[1].d.e');
    expect(duplicateKeyPath('[{"a":1},{"b":1,"b":2}]')).toBe('[1].b');
  });

  it('a key written with an escape is the same key', () => {
    expect(duplicateKeyPath('{"a":1,"\\u0061":2}')).toBe('a');
  });

  it('no false alarms: the same key in sibling or nested objects, key-like text inside strings', () => {
    expect(duplicateKeyPath('{"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}')).toBeUndefined();
    expect(duplicateKeyPath('{"a":{"a":{"a":1}},"b":{"a":2}}')).toBeUndefined();
    expect(duplicateKeyPath('{"prompt":"say \\"prompt\\": {\\"prompt\\": 1}, [x]","completion":"\\\\"}')).toBeUndefined();
    expect(duplicateKeyPath('{"k\\\\":1,"k":2}')).toBeUndefined();
    expect(duplicateKeyPath('42')).toBeUndefined();
  });

  it('an object with many keys is checked in linear time', () => {
    const keys = Array.from({ length: 200_000 }, (_, i) => `"k${i}":${i}`);
    const t = performance.now();
    expect(duplicateKeyPath(`{"meta":{${keys.join(',')}}}`)).toBeUndefined();
    expect(duplicateKeyPath(`{"meta":{${keys.join(',')},"k5":0}}`)).toBe('meta.k5');
    expect(performance.now() - t).toBeLessThan(5000); // quadratic would be 2e10 comparisons
  });
});

describe('splitJsonArray', () => {
  it('gives the items and the line each starts on', () => {
    const s = splitJsonArray('[\n  {"a": "x,]}"},\n  {"b": [1, 2]}, 3,\n  "s"\n]\n');
    expect(s.problem).toBeUndefined();
    expect(s.items.map((i) => [i.text, i.line])).toEqual([['{"a": "x,]}"}', 2], ['{"b": [1, 2]}', 3], ['3', 3], ['"s"', 4]]);
    expect(splitJsonArray('[]').items).toEqual([]);
  });

  it('a broken item is still one item (it fails to parse alone), the others are intact', () => {
    const s = splitJsonArray('[{"a": 1},\n{"b": },\n{"c": 3}]');
    expect(s.problem).toBeUndefined();
    expect(s.items.map((i) => i.text)).toEqual(['{"a": 1}', '{"b": }', '{"c": 3}']);
  });

  it('names structural problems by line, keeping the items before them', () => {
    const cut = splitJsonArray('[\n{"a": 1},\n{"b": "unterminated');
    expect(cut.items.map((i) => i.text)).toEqual(['{"a": 1}']);
    expect(cut.problem).toEqual({ line: 3, message: expect.stringMatching(/never closed \(the file may be truncated\)/) });
    expect(splitJsonArray('[{"a": 1},\n{"b": 2}').problem?.message).toMatch(/not closed and the array has no closing "\]"/);
    expect(splitJsonArray('[{"a": 1},\n]').problem).toEqual({ line: 2, message: expect.stringMatching(/trailing comma/) });
    expect(splitJsonArray('[{"a": 1},,{"b": 1}]').problem?.message).toMatch(/an empty item/);
    expect(splitJsonArray('[{"a": 1}]\n[{"b": 1}]').problem).toEqual({ line: 2, message: expect.stringMatching(/text after the closing "\]"/) });
  });
});
