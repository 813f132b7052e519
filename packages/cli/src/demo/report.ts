/**
 * The demo's closing outputs: the summary table on the terminal and report.json / report.html / report.md in
 * the output folder, through @rlhf/eval's report API (plus a side-by-side samples table in the HTML page).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusteredRatio, createReport, formatEstimate, proportion, reportToHtml, reportToJson, reportToMarkdown, type Estimate, type Report, type ResultSet } from '@rlhf/eval';
import { pct, type DemoSummary, type ModelEval } from './run-demo';

const exact = (value: number, n: number): Estimate => ({ value, n, ci: [NaN, NaN], method: 'exact' });

function modelMetrics(m: ModelEval, n: number): Record<string, Estimate> {
  return {
    'gold score (mean)': m.gold,
    'reward-model score (mean, normalised)': m.rm,
    'right remedy (share)': proportion(Math.round(m.rightRemedy * n), n),
    'names the product (share)': proportion(Math.round(m.namesProduct * n), n),
    'words per reply (mean)': exact(m.meanWords, n),
  };
}

/** The figures of one run as @rlhf/eval result sets (one per system), each figure with its interval. */
export function summaryResults(s: DemoSummary): ResultSet[] {
  const n = s.evalPrompts;
  return [
    { name: 'base', metrics: modelMetrics(s.base, n) },
    { name: 'SFT', metrics: { ...modelMetrics(s.sft, n), 'gold win rate over base': s.winSftOverBase } },
    { name: 'PPO', metrics: { ...modelMetrics(s.ppo, n), 'gold win rate over SFT': s.winPpoOverSft, 'KL to SFT (nats per reply)': s.ppoKl } },
    {
      name: 'reward model',
      metrics: {
        // the pairs of one ranking are not independent: the interval resamples prompts (n = prompts)
        'held-out pairwise accuracy': clusteredRatio(s.rmAccuracyByPrompt.correct, s.rmAccuracyByPrompt.pairs),
        'noisy labels vs gold order (ceiling)': exact(s.labelerAgreement, s.rmAccuracyPairs),
      },
    },
  ];
}

export function buildReport(s: DemoSummary, command: string): Report {
  const n = s.evalPrompts;
  const results = summaryResults(s);
  const series = [
    {
      name: 'reward over-optimisation along PPO (held-out prompts)',
      xLabel: 'KL to the SFT reference (nats per reply)',
      yLabel: 'mean score',
      lines: [
        { name: 'reward model (proxy, normalised)', points: s.curve.map((c) => ({ x: c.kl, y: c.rm, label: `step ${c.step}` })) },
        { name: 'gold labeler (true)', points: s.curve.map((c) => ({ x: c.kl, y: c.gold, label: `step ${c.step}` })) },
      ],
    },
  ];
  const total = s.times.reduce((a, t) => ({ wall: a.wall + t.wallS, cpu: a.cpu + t.cpuS }), { wall: 0, cpu: 0 });
  const notes = [
    `command: ${command}`,
    'task: customer-support replies that should follow a tone guide; the gold labeler (hidden rules + labeler noise) ranked the reward model\'s data and judges the win rates',
    `win rates: one sampled reply per model and held-out prompt (${n} prompts), compared by gold score; ties count half`,
    `time: ${total.wall.toFixed(0)} s wall, ${total.cpu.toFixed(0)} s CPU (${s.times.map((t) => `${t.stage} ${t.wallS.toFixed(0)}/${t.cpuS.toFixed(0)} s`).join(', ')})`,
    `rollouts vs updates, wall seconds per stage: ${stageSplit(s)}`,
  ];
  return createReport(`rlhf demo (seed ${s.seed}${s.quick ? ', --quick' : ''})`, results, series, notes);
}

const esc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function samplesHtml(s: DemoSummary, count: number): string {
  const rows = s.samples
    .slice(0, count)
    .map((x) => `<tr><td>${esc(x.prompt)}</td><td>${esc(x.base)}<br><i>gold ${x.goldBase.toFixed(2)}</i></td><td>${esc(x.sft)}<br><i>gold ${x.goldSft.toFixed(2)}</i></td><td>${esc(x.ppo)}<br><i>gold ${x.goldPpo.toFixed(2)}</i></td></tr>`)
    .join('\n');
  return `<h2>Samples side by side (first ${count} held-out prompts)</h2>\n<table>\n<tr><th>prompt</th><th>base</th><th>SFT</th><th>PPO</th></tr>\n${rows}\n</table>\n`;
}

/** Writes report.json, report.md and report.html into `out`. */
export function writeReports(out: string, s: DemoSummary, command: string): Report {
  const report = buildReport(s, command);
  writeFileSync(join(out, 'report.json'), `${JSON.stringify({ report: JSON.parse(reportToJson(report)), summary: { ...s, samples: s.samples.slice(0, 20) } }, null, 2)}\n`);
  writeFileSync(join(out, 'report.md'), reportToMarkdown(report));
  const html = reportToHtml(report);
  const at = html.lastIndexOf('</body>');
  writeFileSync(join(out, 'report.html'), at >= 0 ? `${html.slice(0, at)}${samplesHtml(s, 12)}${html.slice(at)}` : html + samplesHtml(s, 12));
  return report;
}

/** Each stage's wall time split into rollouts (sampling and scoring replies) and updates (training steps). */
export function stageSplit(s: Pick<DemoSummary, 'times'>): string {
  return s.times.map((t) => `${t.stage} ${t.rolloutS.toFixed(0)} / ${t.updateS.toFixed(0)} s`).join(', ');
}

/** The terminal summary: one row per model, then the reward model, KL and time. */
export function summaryTable(s: DemoSummary): string {
  const row = (cells: string[]) => `  ${cells[0].padEnd(6)}${cells.slice(1, -1).map((c) => c.padStart(13)).join('')}${cells[cells.length - 1].padStart(18)}`;
  const m = (name: string, e: ModelEval, win: string) => row([name, e.gold.value.toFixed(2), e.rm.value.toFixed(2), pct(e.rightRemedy), pct(e.namesProduct), e.meanWords.toFixed(1), win]);
  const total = s.times.reduce((a, t) => ({ wall: a.wall + t.wallS, cpu: a.cpu + t.cpuS }), { wall: 0, cpu: 0 });
  return [
    `Summary (seed ${s.seed}${s.quick ? ', --quick' : ''}; ${s.evalPrompts} held-out prompts, one sampled reply per model)`,
    row(['model', 'gold score', 'RM score', 'right remedy', 'names prod.', 'words', 'gold win rate']),
    m('base', s.base, '-'),
    m('SFT', s.sft, `${pct(s.winSftOverBase.value)} vs base`),
    m('PPO', s.ppo, `${pct(s.winPpoOverSft.value)} vs SFT`),
    `  PPO over SFT: ${s.winPpoOverSft.wins} wins, ${s.winPpoOverSft.ties} ties, ${s.winPpoOverSft.losses} losses; 95% CI ${formatEstimate(s.winPpoOverSft)}`,
    `  KL(PPO || SFT): ${formatEstimate(s.ppoKl)} nats per reply`,
    `  reward model: held-out pairwise accuracy ${pct(s.rmAccuracy)} (${s.rmAccuracyPairs} pairs; noisy labels agree with gold on ${pct(s.labelerAgreement)})`,
    `  time: ${total.wall.toFixed(0)} s wall, ${total.cpu.toFixed(0)} s CPU; rollouts vs updates: ${stageSplit(s)}`,
  ].join('\n');
}
