import { describe, expect, it } from 'vitest';
import { createReport, formatEstimate, metricsOf, reportToHtml, reportToJson, reportToMarkdown } from './report';
import { bbqReport } from './benchmarks/bbq';
import { meanEstimate, proportion } from './stats';

const results = [
  { name: 'base', metrics: { 'win rate': proportion(5, 10), KL: meanEstimate([0, 0.1]) } },
  { name: 'PPO <v2>', metrics: { 'win rate': proportion(8, 10), KL: meanEstimate([2, 3, 4]) } },
];
const series = [{ name: 'over-optimisation', xLabel: 'KL', yLabel: 'reward', lines: [{ name: 'proxy', points: [{ x: 0, y: 0 }, { x: 2, y: 1, lo: 0.8, hi: 1.2 }, { x: 5, y: 2, lo: 1.7, hi: 2.3 }] }, { name: 'gold', points: [{ x: 0, y: 0 }, { x: 2, y: 0.6 }, { x: 5, y: 0.3 }] }] }];

describe('reports', () => {
  it('Markdown: one row per metric, one column per result set, value [CI] (n)', () => {
    const md = reportToMarkdown(createReport('Demo', results, series, ['proxy scorer']));
    expect(md).toContain('| metric | base | PPO <v2> |');
    expect(md).toContain(`| win rate | ${formatEstimate(results[0].metrics['win rate'])} | ${formatEstimate(results[1].metrics['win rate'])} |`);
    expect(formatEstimate(proportion(8, 10))).toMatch(/^0\.800 \[0\.\d+, 0\.\d+\] \(n=10\)$/);
    expect(md).toContain('## over-optimisation');
    expect(md).toContain('> proxy scorer');
  });

  it('JSON keeps n and the interval of every number; NaN becomes null', () => {
    const j = JSON.parse(reportToJson(createReport('Demo', [{ name: 'x', metrics: { a: proportion(0, 0) } }])));
    expect(j.results[0].metrics.a).toEqual({ value: null, n: 0, ci: [null, null], method: 'wilson', reason: 'no items' });
  });

  it('HTML is self-contained: inline SVG charts, escaped names, nothing fetched', () => {
    const html = reportToHtml(createReport('Demo & test', results, series));
    expect(html).toContain('Demo &amp; test');
    expect(html).toContain('PPO &lt;v2&gt;');
    expect(html).not.toContain('PPO <v2>');
    expect((html.match(/<svg /g) ?? []).length).toBe(3); // two metrics + one series
    expect(html).toContain('<polyline');
    // no scripts, no external resources: the only URL is the SVG namespace
    expect(html).not.toMatch(/<script|<link|@import|url\(/i);
    expect(html.match(/https?:\/\/[^"]+/g)?.every((u) => u === 'http://www.w3.org/2000/svg')).toBe(true);
  });

  it('an undefined metric (BBQ S_AMB, S_DIS with nothing to rest on) is n/a or null with its reason in every report, never NaN', () => {
    // two ambiguous examples, both answered 'unknown' (correct): the ambiguous bias score has no denominator;
    // no disambiguated example at all
    const amb = (pred: number) => ({ category: 'Age', condition: 'ambig' as const, polarity: 'neg' as const, pred, label: 2, unknownIndex: 2, stereotypedIndex: 0 });
    const r = bbqReport([amb(2), amb(2)]);
    const metrics = metricsOf({ benchmark: 'bbq', ...r, predictions: [], compute: { positionsRun: 0, seconds: 0, truncatedPrompts: 0 } });
    expect(metrics['BBQ accuracy'].value).toBe(1);
    const series = [{ name: 'curve', xLabel: 'KL', yLabel: 'reward', lines: [{ name: 'gold', points: [{ x: 0, y: 0 }, { x: 1, y: NaN }, { x: 2, y: 0.5 }] }] }];
    const report = createReport('BBQ', [{ name: 'sft', metrics }], series);
    const md = reportToMarkdown(report);
    expect(md).toContain("| BBQ S_AMB | n/a: every ambiguous answer was 'unknown' or named no stereotyped group (n=2) |");
    expect(md).toContain('| BBQ S_DIS | n/a: no disambiguated examples (n=0) |');
    expect(md).toContain('| BBQ accuracy (disambiguated) | n/a: no items (n=0) |');
    expect(md).toContain('| gold | 1 | n/a |');
    const html = reportToHtml(report);
    expect(html).toContain("<td>n/a: every ambiguous answer was 'unknown' or named no stereotyped group (n=2)</td>");
    const j = JSON.parse(reportToJson(report));
    expect(j.results[0].metrics['BBQ S_AMB']).toMatchObject({ value: null, n: 2, reason: "every ambiguous answer was 'unknown' or named no stereotyped group" });
    expect(j.results[0].metrics['BBQ Age S_DIS']).toMatchObject({ value: null, n: 0, reason: 'no disambiguated examples' });
    for (const text of [md, html, reportToJson(report)]) expect(text).not.toMatch(/NaN/);
  });

  it('rejects duplicate names and flattens benchmark results', () => {
    expect(() => createReport('x', [results[0], results[0]])).toThrow(/two result sets are named "base"/);
    const r = bbqReport([{ category: 'Age', condition: 'disambig', polarity: 'neg', pred: 0, label: 0, unknownIndex: 2, stereotypedIndex: 0 }]);
    const m = metricsOf({ benchmark: 'bbq', ...r, predictions: [], compute: { positionsRun: 0, seconds: 0, truncatedPrompts: 0 } });
    expect(m['BBQ S_DIS'].value).toBe(1);
    expect(m['BBQ Age accuracy'].value).toBe(1);
  });
});
