/**
 * The examples run end to end on stories260K, in order, each as its own process from the built dist/ (as
 * `npm start` runs them), into a temporary folder; every step must exit 0 and leave the model folder the next
 * one reads. CI runs this (`npm test`); locally without the shared folder it is skipped with a message.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedDirForTests } from '@rlhf/data';
import { afterAll, describe, expect, it } from 'vitest';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const out = mkdtempSync(join(tmpdir(), 'rlhf-examples-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function run(script: string): string {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [join(dist, script)], {
    encoding: 'utf8',
    env: { ...process.env, RLHF_EXAMPLES_OUT: out, RLHF_NUM_THREADS: process.env.RLHF_NUM_THREADS ?? '2' },
    timeout: 240_000,
  });
  if (r.status !== 0) throw new Error(`${script} exited ${r.status}${r.error ? ` (${r.error.message})` : ''}:\n${r.stderr}\n${r.stdout}`);
  console.log(`${script}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n${r.stdout}`);
  return r.stdout;
}

describe.skipIf(!sharedDirForTests())('examples/ on stories260K', () => {
  it('1 SFT -> 2 reward model -> 3 PPO with it; 4 PPO with a reward function; 5 DPO; 6 evaluation', () => {
    expect(run('1-sft.js')).toMatch(/^sft: \d+ steps, held-out completion loss \d+\.\d{3}$/m);
    expect(existsSync(join(out, 'sft', 'tokenizer.bin'))).toBe(true);
    expect(run('2-reward-model.js')).toMatch(/^reward model: held-out pairwise accuracy \d\.\d\d over 12 pairs$/m);
    expect(JSON.parse(readFileSync(join(out, 'rm', 'config.json'), 'utf8')).num_labels).toBe(1);
    expect(run('3-ppo-reward-model.js')).toMatch(/^ppo: reward-model score on held-out prompts -?\d+\.\d\d -> -?\d+\.\d\d, KL to SFT -?\d+\.\d\d nats$/m);
    expect(run('4-ppo-reward-function.js')).toMatch(/^ppo with a reward function: mean reward on held-out prompts \d+\.\d\d -> \d+\.\d\d$/m);
    expect(run('5-dpo.js')).toMatch(/^dpo: held-out implicit reward accuracy \d\.\d\d, margin -?\d+\.\d{3}$/m);
    const report = run('6-evaluate.js');
    expect(report).toMatch(/\| metric \| reward model \| ppo \| ppo-fn \| dpo \|/);
    expect(report).toMatch(/\| win rate over SFT \(reward-model judge\) \| – \| \d\.\d{3} /);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  });
});

if (!sharedDirForTests()) console.log('examples: skipped: no shared folder with models/stories260K (set RLHF_SHARED_DIR); CI fails instead');
