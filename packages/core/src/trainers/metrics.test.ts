import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MetricsWriter, readMetrics } from './metrics';
import { formatMetric, LineProgress } from './progress';

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'rlhf-metrics-'));
  dirs.push(d);
  return d;
}
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('MetricsWriter', () => {
  it('writes one JSON line per record, non-finite numbers as strings', () => {
    const path = join(tmp(), 'metrics.jsonl');
    const w = new MetricsWriter(path);
    w.write({ step: 1, loss: 0.5, lr: 1e-4 });
    w.write({ step: 2, loss: Number.NaN, kl: Number.POSITIVE_INFINITY, phase: 'train' });
    w.sync();
    w.close();
    expect(readFileSync(path, 'utf8')).toBe(
      '{"step":1,"loss":0.5,"lr":0.0001}\n{"step":2,"loss":"NaN","kl":"Infinity","phase":"train"}\n',
    );
  });

  it('on resume drops lines after the checkpoint step and a torn last line, then appends', () => {
    const path = join(tmp(), 'metrics.jsonl');
    const w = new MetricsWriter(path);
    for (let s = 1; s <= 5; s++) w.write({ step: s, loss: 1 / s });
    w.close();
    appendFileSync(path, '{"step":6,"lo'); // killed mid-write
    const r = new MetricsWriter(path, { resumeFromStep: 3 });
    r.write({ step: 4, loss: 0.2 });
    r.close();
    expect(readMetrics(path).map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(readMetrics(path)[3].loss).toBe(0.2);
  });
});

describe('LineProgress', () => {
  it('writes a start line, every n-th step and the last one, and messages', () => {
    const lines: string[] = [];
    const p = new LineProgress((l) => lines.push(l), 2);
    p.start('sft', 5, 0);
    for (let s = 1; s <= 5; s++) p.update(s, { loss: 1 / s, lr: 1e-5 });
    p.log('checkpoint written');
    expect(lines).toEqual([
      '[sft] starting, 5 steps',
      '[sft] step 2/5 loss=0.5 lr=1.00e-5',
      '[sft] step 4/5 loss=0.25 lr=1.00e-5',
      '[sft] step 5/5 loss=0.2 lr=1.00e-5',
      '[sft] checkpoint written',
    ]);
    const q: string[] = [];
    const r = new LineProgress((l) => q.push(l));
    r.log('said before start'); // no label yet: no empty brackets
    r.start('ppo', 10, 4);
    expect(q).toEqual(['said before start', '[ppo] resuming at step 4 of 10 steps']);
  });

  it('formats numbers compactly', () => {
    expect([formatMetric(0), formatMetric(0.123456), formatMetric(123456), formatMetric(Number.NaN), formatMetric(-2.5)]).toEqual([
      '0',
      '0.1235',
      '1.23e+5',
      'NaN',
      '-2.5',
    ]);
  });
});
