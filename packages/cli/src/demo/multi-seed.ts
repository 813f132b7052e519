/**
 * The demo over several seeds (`rlhf demo --seeds 1-5`): every headline figure of every run side by side, with
 * its mean, its worst seed and its spread (standard deviation, min and max over seeds). One seed can hide a
 * recipe that fails on others; the spread says how far a single run's figures can be trusted.
 *
 * Rows are "system: figure" as the single-seed report names them (summaryResults: `PPO: gold win rate over
 * SFT`, `reward model: held-out pairwise accuracy`, ...). A trainer added to the demo (GRPO, RLOO) adds its result
 * set to summaryResults and its figures become more rows here; an extra over-optimisation curve, one more chart.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createReport, exact, meanEstimate, reportToHtml, reportToJson, reportToMarkdown, type Estimate, type Report, type ResultSet, type Series } from '@rlhf/eval';
import { summaryResults } from './report';
import type { DemoSummary } from './run-demo';

/** Which way a figure is better; null for neither (a proxy score, a length, a property of the data). */
export type Better = 'higher' | 'lower' | null;

/** Direction and display of each figure, by the name summaryResults gives it (a figure not listed: neither, a number). */
const FIGURES: Record<string, { better: Better; share?: boolean; digits?: number }> = {
  'gold score (mean)': { better: 'higher' },
  'right remedy (share)': { better: 'higher', share: true },
  'names the product (share)': { better: 'higher', share: true },
  'gold win rate over base': { better: 'higher', share: true },
  'gold win rate over SFT': { better: 'higher', share: true },
  'gold win rate over PPO': { better: 'higher', share: true },
  'held-out accuracy, sampled': { better: 'higher', share: true },
  'held-out accuracy, greedy': { better: 'higher', share: true },
  'additions, sampled': { better: 'higher', share: true },
  'subtractions, sampled': { better: 'higher', share: true },
  'gain over SFT, sampled (points)': { better: 'higher', digits: 1 },
  'gain over SFT, greedy (points)': { better: 'higher', digits: 1 },
  'rollout wall time (s)': { better: 'lower', digits: 0 },
  'update wall time (s)': { better: 'lower', digits: 0 },
  'KL to SFT (nats per reply)': { better: 'lower' },
  'held-out pairwise accuracy': { better: 'higher', share: true },
  'noisy labels vs gold order (ceiling)': { better: null, share: true },
  'wall time, all stages (s)': { better: 'lower', digits: 0 },
  'CPU time, all stages (s)': { better: 'lower', digits: 0 },
};

/** One figure over the seeds. */
export interface SeedRow {
  /** the result set it belongs to: base, SFT, PPO, reward model, run */
  system: string;
  figure: string;
  better: Better;
  /** a share in [0, 1] (shown as a percentage) */
  share: boolean;
  /** decimals shown for a figure that is not a share */
  digits: number;
  /** one value per seed, in the order of MultiSeedSummary.seeds */
  values: number[];
  mean: number;
  /** sample standard deviation over seeds (n − 1); NaN for one seed */
  sd: number;
  min: number;
  max: number;
  /** the worst seed's value (the min where higher is better, the max where lower is); NaN where neither */
  worst: number;
  worstSeed: number | null;
}

export interface MultiSeedSummary {
  seeds: number[];
  quick: boolean;
  /** the runs trained LoRA adapters at stages 1-3 (rlhf demo --lora) */
  lora: boolean;
  rows: SeedRow[];
}

/** Per run: its result sets (summaryResults) plus the run's own cost. */
function resultsOf(s: DemoSummary): ResultSet[] {
  const wall = s.times.reduce((a, t) => a + t.wallS, 0);
  const cpu = s.times.reduce((a, t) => a + t.cpuS, 0);
  return [...summaryResults(s), { name: 'run', metrics: { 'wall time, all stages (s)': exact(wall), 'CPU time, all stages (s)': exact(cpu) } }];
}

/** Mean, worst and spread of every figure of `runs` (one summary per seed, same recipe). */
export function aggregateSeeds(runs: DemoSummary[]): MultiSeedSummary {
  if (runs.length === 0) throw new RangeError('aggregateSeeds: no run');
  const seeds = runs.map((r) => r.seed);
  const lora = runs[0].lora !== null;
  const mixed = runs.find((r) => (r.lora !== null) !== lora);
  if (mixed) throw new Error(`aggregateSeeds: seed ${mixed.seed} ${lora ? 'fine-tuned every weight' : 'trained LoRA adapters'} and seed ${seeds[0]} did not: not one recipe`);
  return aggregateResults(seeds, runs[0].quick, runs.map(resultsOf), lora);
}

/** aggregateSeeds over any task's result sets: perRun[i] are seed i's, named as in the first run. */
export function aggregateResults(seeds: number[], quick: boolean, perRun: ResultSet[][], lora = false): MultiSeedSummary {
  if (perRun.length === 0) throw new RangeError('aggregateResults: no run');
  const rows: SeedRow[] = [];
  for (const set of perRun[0]) {
    for (const figure of Object.keys(set.metrics)) {
      const values = perRun.map((sets, i) => {
        const e = sets.find((x) => x.name === set.name)?.metrics[figure];
        if (!e) throw new Error(`aggregateSeeds: seed ${seeds[i]} has no figure "${set.name}: ${figure}"`);
        return e.value;
      });
      const n = values.length;
      const mean = values.reduce((a, b) => a + b, 0) / n;
      const sd = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : NaN;
      const { better = null, share = false, digits = 2 } = FIGURES[figure] ?? {};
      const min = Math.min(...values);
      const max = Math.max(...values);
      const worst = better === 'higher' ? min : better === 'lower' ? max : NaN;
      rows.push({ system: set.name, figure, better, share, digits, values, mean, sd, min, max, worst, worstSeed: Number.isNaN(worst) ? null : seeds[values.indexOf(worst)] });
    }
  }
  return { seeds, quick, lora, rows };
}

/** A row by system and figure (undefined when absent). */
export function seedRow(m: MultiSeedSummary, system: string, figure: string): SeedRow | undefined {
  return m.rows.find((r) => r.system === system && r.figure === figure);
}

function formatValue(row: SeedRow, v: number): string {
  if (!Number.isFinite(v)) return '–';
  return row.share ? `${(100 * v).toFixed(1)}%` : v.toFixed(row.digits);
}

/** The table of headline figures: a row per figure; a column per seed, then mean, worst and spread. */
function headlineTable(m: MultiSeedSummary): { header: string[]; rows: string[][] } {
  const header = ['figure', ...m.seeds.map((s) => `seed ${s}`), 'mean', 'worst', 'sd', 'min – max'];
  const rows = m.rows.map((r) => [
    `${r.system}: ${r.figure}`,
    ...r.values.map((v) => formatValue(r, v)),
    formatValue(r, r.mean),
    r.worstSeed === null ? '–' : `${formatValue(r, r.worst)} (seed ${r.worstSeed})`,
    r.share && Number.isFinite(r.sd) ? `${(100 * r.sd).toFixed(1)} pt` : formatValue(r, r.sd),
    `${formatValue(r, r.min)} – ${formatValue(r, r.max)}`,
  ]);
  return { header, rows };
}

function seedsLabel(m: MultiSeedSummary): string {
  return `seeds ${m.seeds.join(', ')}${m.quick ? ', --quick' : ''}${m.lora ? ', --lora' : ''}`;
}

/** The terminal summary over seeds. */
export function multiSeedTable(m: MultiSeedSummary): string {
  const { header, rows } = headlineTable(m);
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((r) => r[j].length)));
  const line = (cells: string[]) => `  ${cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ')}`;
  return [`Over ${m.seeds.length} seeds (${seedsLabel(m)}; sd: standard deviation over seeds, pt: percentage points)`, line(header), ...rows.map(line)].join('\n');
}

/** The same table in Markdown. */
export function multiSeedMarkdown(m: MultiSeedSummary): string {
  const { header, rows } = headlineTable(m);
  const md = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [md(header), md(header.map(() => '---')), ...rows.map(md)].join('\n');
}

/**
 * The @rlhf/eval report over seeds: a column per seed (that run's estimate and interval) and the mean over
 * seeds (its interval from the seed-to-seed spread, n = seeds); the over-optimisation curve of every seed.
 */
export function buildMultiSeedReport(m: MultiSeedSummary, runs: DemoSummary[], command: string): Report {
  const curve = (what: 'gold' | 'rm', algo: 'PPO' | 'GRPO'): Series => ({
    name: `${what === 'gold' ? 'gold score (true)' : 'reward-model score (proxy, normalised)'} along ${algo}, per seed (held-out prompts)`,
    xLabel: 'KL to the SFT reference (nats per reply)',
    yLabel: 'mean score',
    lines: runs.map((s) => ({ name: `seed ${s.seed}`, points: (algo === 'PPO' ? s.curve : (s.grpo?.curve ?? [])).map((c) => ({ x: c.kl, y: c[what], label: `step ${c.step}` })) })),
  });
  const curves = [curve('gold', 'PPO'), curve('rm', 'PPO'), ...(runs.every((s) => s.grpo) ? [curve('gold', 'GRPO'), curve('rm', 'GRPO')] : [])];
  const flags = [m.quick ? '--quick' : '', m.lora ? '--lora' : ''].filter(Boolean).join(' ');
  return seedsReport(m, runs.map(resultsOf), curves, `rlhf demo over ${runs.length} seeds${flags ? ` (${flags})` : ''}`, command);
}

/**
 * The report over seeds of any task's runs: perRun[i] are seed m.seeds[i]'s result sets (those aggregateResults
 * read), `curves` a line per seed.
 */
export function seedsReport(m: MultiSeedSummary, perRun: ResultSet[][], curves: Series[], title: string, command: string): Report {
  const key = (r: SeedRow) => `${r.system}: ${r.figure}`;
  const results: ResultSet[] = perRun.map((sets, i) => ({
    name: `seed ${m.seeds[i]}`,
    metrics: Object.fromEntries(m.rows.map((r) => [key(r), sets.find((x) => x.name === r.system)!.metrics[r.figure]])),
  }));
  const mean: Record<string, Estimate> = Object.fromEntries(m.rows.map((r) => [key(r), meanEstimate(r.values)]));
  results.push({ name: 'mean', metrics: mean });
  const notes = [
    `command: ${command}`,
    `${perRun.length} runs of the same recipe (${seedsLabel(m)}); each seed's own report is in seed-N/`,
    'per seed: the run\'s estimate [95% interval over its held-out prompts]; mean: over seeds, its interval from the spread between seeds (n = seeds)',
  ];
  return createReport(title, results, curves, notes);
}

/** Writes report.json (the eval report and the aggregate rows), report.md and report.html into `out`. */
export function writeMultiSeedReports(out: string, m: MultiSeedSummary, runs: DemoSummary[], command: string): Report {
  return writeSeedsReport(out, m, buildMultiSeedReport(m, runs, command));
}

/** Writes a report over seeds (seedsReport's) with the headline table of `m` into `out`: report.json, .md, .html. */
export function writeSeedsReport(out: string, m: MultiSeedSummary, report: Report): Report {
  writeFileSync(join(out, 'report.json'), `${JSON.stringify({ report: JSON.parse(reportToJson(report)), multiSeed: m }, null, 2)}\n`);
  const headline = `## Headline figures over seeds\n\n${multiSeedMarkdown(m)}\n\nsd: standard deviation over seeds (pt: percentage points); worst: the lowest seed where higher is better, the highest where lower is.\n`;
  const md = reportToMarkdown(report);
  const cut = md.indexOf('\n| metric |');
  writeFileSync(join(out, 'report.md'), cut >= 0 ? `${md.slice(0, cut)}\n${headline}\n## Per seed, with intervals\n${md.slice(cut)}` : `${md}\n${headline}`);
  const html = reportToHtml(report);
  const esc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const { header, rows } = headlineTable(m);
  const table =
    `<h2>Headline figures over seeds</h2>\n<table><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('') +
    '</tbody></table><p class="n">sd: standard deviation over seeds (pt: percentage points); worst: the lowest seed where higher is better, the highest where lower is.</p>\n<h2>Per seed, with intervals</h2>\n';
  const at = html.indexOf('<table>');
  writeFileSync(join(out, 'report.html'), at >= 0 ? `${html.slice(0, at)}${table}${html.slice(at)}` : html + table);
  return report;
}

/**
 * A seed list: integers and ranges, comma-separated ("1-5", "1,3,7", "1-3,10"), each in [0, 2^32 − 1], no
 * repeats, at most 100 seeds. Errors name the flag.
 */
export function parseSeedList(text: string, flag = '--seeds'): number[] {
  const out: number[] = [];
  const bad = (why: string) => new Error(`${flag} must be seeds or ranges separated by commas, e.g. 1-5 or 1,3,7: ${why}`);
  for (const part of text.split(',').map((x) => x.trim())) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) throw bad(`"${part}" is not a seed (an integer in [0, 4294967295]) or a range of seeds`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    for (const v of [a, b]) if (v > 0xffffffff) throw bad(`${v} is more than 4294967295`);
    if (b < a) throw bad(`the range "${part}" is empty`);
    if (out.length + (b - a + 1) > 100) throw bad(`more than 100 seeds in "${text}"`);
    for (let s = a; s <= b; s++) {
      if (out.includes(s)) throw bad(`seed ${s} is listed twice`);
      out.push(s);
    }
  }
  return out;
}
