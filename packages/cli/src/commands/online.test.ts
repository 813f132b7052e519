/**
 * `rlhf grpo` and `rlhf rloo` in-process on a tiny GPT-2 with its own BPE tokenizer: rewards from the config
 * file (a .mjs module, a .ts module, built-ins, async), dataset columns reaching reward functions, resume, and
 * config problems listed by path. Ctrl-C of the built CLI is in train-signal.test.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT2, fromPretrained, readMetrics, saveModelDir, saveTokenizer, trainByteLevelBpe } from '@rlhf/core';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerGrpo, registerRloo } from './online';

const root = mkdtempSync(join(tmpdir(), 'rlhf-cli-online-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const base = join(root, 'base');
const data = join(root, 'questions.jsonl');

beforeAll(() => {
  const tok = trainByteLevelBpe(['what is one plus two? 3. what is two plus two? 4. the answer is 5. yes no'], { vocabSize: 290 });
  const model = new GPT2({ vocabSize: tok.vocabSize, nPositions: 64, nEmbd: 32, nLayer: 1, nHead: 2 }, { seed: 1 });
  mkdirSync(base, { recursive: true });
  saveModelDir(base, model.hfConfig(), model.stateDict());
  saveTokenizer(base, tok);
  // a TRL prompt-only file whose "answer" column the reward function reads
  const rows = Array.from({ length: 8 }, (_, i) => ({ prompt: `what is ${i} plus two?`, answer: String(i + 2) }));
  writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  // a reward module: one reward reads the column and the completion text, one is async
  writeFileSync(join(root, 'rewards.mjs'), [
    'export function seesAnswer({ rows, completions }) { return completions.map((c, i) => (typeof rows[i].answer === "string" && typeof c === "string" ? 1 : 0)); }',
    'export async function shortIsGood({ completionIds }) { await new Promise((r) => setTimeout(r, 1)); return completionIds.map((ids) => -ids.length / 8); }',
    'export const notAFunction = 3;',
  ].join('\n'));
  writeFileSync(join(root, 'typed.ts'), 'import type { RewardFunction } from "@rlhf/core";\nconst lengthOf: RewardFunction = (inp) => inp.completionIds.map((ids): number => ids.length);\nexport default lengthOf;\n');
});

async function run(register: (p: Command) => void, name: string, ...args: string[]): Promise<{ summary: Record<string, unknown>; err: string }> {
  const program = new Command('rlhf').exitOverride();
  register(program);
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    await program.parseAsync(['node', 'rlhf', name, ...args]);
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  return { summary: JSON.parse(out.trim().split('\n').at(-1)!), err };
}

function config(name: string, fields: Record<string, unknown>): string {
  const p = join(root, `${name}.json`);
  writeFileSync(p, JSON.stringify({ modelPath: base, datasetPath: data, learningRate: 1e-3, numGenerations: 4, perDeviceTrainBatchSize: 8, maxCompletionLength: 4, ...fields }));
  return p;
}

describe('rlhf grpo | rloo', () => {
  it('grpo: rewards from a module (sync and async), a built-in and the dataset column; metrics by reward name; final folder; --resume reaches the same weights', async () => {
    const cfg = config('grpo', {
      rewardFuncs: [
        { module: 'rewards.mjs', export: 'seesAnswer' },
        { module: 'rewards.mjs', export: 'shortIsGood', weight: 0.5 },
        { builtin: 'answerMatch', options: { column: 'answer' }, name: 'correct' },
      ],
      saveSteps: 1,
      beta: 0.04,
    });
    const out = join(root, 'grpo-out');
    const { summary } = await run(registerGrpo, 'grpo', '--config', cfg, '--out', out, '--max-steps', '3');
    expect(summary).toMatchObject({ command: 'grpo', steps: 3, final: join(out, 'final') });
    const m = readMetrics(join(out, 'metrics.jsonl'));
    expect(m.map((r) => r.step)).toEqual([1, 2, 3]);
    expect(m[0]['rewards/seesAnswer/mean']).toBe(1); // every row's answer column reached the function, with text
    expect(m[0]['rewards/shortIsGood/mean']).toBeLessThan(0);
    expect(typeof m[0]['rewards/correct/mean']).toBe('number');
    expect(typeof m[0].kl).toBe('number');
    const first = fromPretrained(join(out, 'final')).model.stateDict();
    const again = await run(registerGrpo, 'grpo', '--config', cfg, '--out', out, '--max-steps', '3', '--resume', join(out, 'checkpoint-2'));
    expect(again.summary.steps).toBe(3);
    const second = fromPretrained(join(out, 'final')).model.stateDict();
    for (const [k, v] of first) expect(second.get(k)!.data).toEqual(v.data);
  });

  it('rloo --advantage-estimator reinforce++ with a .ts reward module (compiled with esbuild, the temporary file removed)', async () => {
    const cfg = config('rpp', { rewardFuncs: [{ module: 'typed.ts' }], numGenerations: 2 });
    const out = join(root, 'rpp-out');
    const { summary } = await run(registerRloo, 'rloo', '--config', cfg, '--out', out, '--advantage-estimator', 'reinforce++', '--max-steps', '2');
    expect(summary).toMatchObject({ command: 'rloo', steps: 2 });
    expect(typeof readMetrics(join(out, 'metrics.jsonl'))[0]['rewards/lengthOf/mean']).toBe('number');
    expect(readdirSync(root).filter((f) => f.startsWith('.typed.ts.'))).toEqual([]);
  });

  it('lists every problem of the config and of rewardFuncs at once, by path', async () => {
    const cfg = config('bad', {
      epsilonLow: 0.3,
      epsilonHigh: 0.2,
      numGenerations: 1,
      rewardFuncs: [{ module: 'rewards.mjs', weight: 'heavy' }, { builtin: 'regexOf' }, { module: 'a.mjs', rewardModel: 'x' }, { rewardModel: 'rm', timeoutMs: 5 }],
    });
    const err = await run(registerGrpo, 'grpo', '--config', cfg).catch((e: Error) => e);
    expect((err as Error).name).toBe('ConfigError');
    const msg = (err as Error).message;
    for (const line of [
      'rewardFuncs[0].weight: must be a finite number, got "heavy"',
      "rewardFuncs[1].builtin: must be one of answerMatch, formatMatch, lengthPenalty, got 'regexOf'",
      'rewardFuncs[2]: must have exactly one of "module", "builtin", "rewardModel", got module and rewardModel',
      'rewardFuncs[3].timeoutMs: unknown key for a "rewardModel" reward',
      'epsilonHigh: must be ≥ epsilonLow',
      'numGenerations: must be ≥ 2, got 1',
    ]) expect(msg).toContain(line);
    const none = await run(registerGrpo, 'grpo', '--config', config('none', {})).catch((e: Error) => e);
    expect((none as Error).message).toMatch(/grpo: no reward: give "rewardFuncs" in --config/);
  });

  it("a built-in's unknown option is listed with the config's problems; an option of the wrong type is named by path before training", async () => {
    // a misspelt option used to be dropped silently (answerMatch read its default column), and a string tolerance
    // made every answer wrong: rewards of 0 throughout, with no message
    const unknown = await run(registerGrpo, 'grpo', '--config', config('unknown-opt', {
      rewardFuncs: [{ builtin: 'answerMatch', options: { colum: 'answer' } }, { builtin: 'lengthPenalty', options: { maxTokens: 4, perToken: 0.1, max: 2 } }],
    }), '--out', join(root, 'unknown-opt-out')).catch((e: Error) => e);
    expect((unknown as Error).name).toBe('ConfigError');
    expect((unknown as Error).message).toContain("rewardFuncs[0].options.colum: unknown option of answerMatch (known: column, extract, flags, numeric, tolerance, caseSensitive, name)");
    expect((unknown as Error).message).toContain('rewardFuncs[1].options.max: unknown option of lengthPenalty (known: maxTokens, perToken, name)');
    const out = join(root, 'bad-type-out');
    const badType = await run(registerGrpo, 'grpo', '--config', config('bad-type', { rewardFuncs: [{ builtin: 'answerMatch', options: { tolerance: 'abc' } }] }), '--out', out).catch((e: Error) => e);
    expect((badType as Error).name).toBe('ConfigError');
    expect((badType as Error).message).toContain(`grpo config: 1 problem:\n  - rewardFuncs[0].options.tolerance: answerMatch: option 'tolerance' must be a finite number ≥ 0, got "abc"`);
    expect(existsSync(out) ? readdirSync(out).filter((f) => f.startsWith('checkpoint-') || f === 'final') : []).toEqual([]);
  });

  it('a module without the export names its functions; a missing file and a reward that answers NaN are named', async () => {
    const noExport = await run(registerGrpo, 'grpo', '--config', config('noexp', { rewardFuncs: [{ module: 'rewards.mjs', export: 'notAFunction' }] })).catch((e: Error) => e);
    expect((noExport as Error).message).toMatch(/rewardFuncs\[0\]\.export: .*rewards\.mjs exports no function named 'notAFunction' \(its functions: seesAnswer, shortIsGood\)/);
    const missing = await run(registerGrpo, 'grpo', '--config', config('missing', { rewardFuncs: [{ module: 'nope.mjs' }] })).catch((e: Error) => e);
    expect((missing as Error).message).toMatch(/^grpo config: 1 problem:\n {2}- rewardFuncs\[0\]\.module: .*nope\.mjs does not exist/);
    // every problem of rewardFuncs is the command's config problem, by path: the shape (checked with the config),
    // what loads, and names that collide (metrics are logged by name)
    const badPattern = await run(registerRloo, 'rloo', '--config', config('pattern', { rewardFuncs: [{ builtin: 'lengthPenalty', options: { maxTokens: 4, perToken: 0.1 } }, { builtin: 'formatMatch', options: { pattern: '(' } }] })).catch((e: Error) => e);
    expect((badPattern as Error).message).toMatch(/^rloo config: 1 problem:\n {2}- rewardFuncs\[1\]\.options\.pattern: not a valid regular expression: /);
    const twice = await run(registerGrpo, 'grpo', '--config', config('twice', { rewardFuncs: [{ module: 'rewards.mjs', export: 'seesAnswer' }, { builtin: 'answerMatch', options: { column: 'answer' }, name: 'seesAnswer' }] })).catch((e: Error) => e);
    expect((twice as Error).message).toBe(`grpo config: 1 problem:\n  - rewardFuncs[1].name: 'seesAnswer' is also the name of rewardFuncs[0]; give each reward a distinct "name" (their metrics are logged by name)`);
    writeFileSync(join(root, 'nan.mjs'), 'export default function judge({ completionIds }) { return completionIds.map((_, i) => (i === 2 ? NaN : 0)); }');
    const nan = await run(registerGrpo, 'grpo', '--config', config('nan', { rewardFuncs: [{ module: 'nan.mjs' }] }), '--out', join(root, 'nan-out')).catch((e: Error) => e);
    expect((nan as Error).message).toMatch(/reward function 'judge' returned NaN for completion 2 of 8/);
  });
});
