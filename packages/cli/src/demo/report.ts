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

/** An RL stage's wall time by its trainer clock: rollouts (sampling and scoring) and updates. */
function rlTimeMetrics(s: Pick<DemoSummary, 'times'>, stage: string): Record<string, Estimate> {
  const t = s.times.find((x) => x.stage === stage);
  return t ? { 'rollout wall time (s)': exact(t.rolloutS, 1), 'update wall time (s)': exact(t.updateS, 1) } : {};
}

/** The figures of one run as @rlhf/eval result sets (one per system), each figure with its interval. */
export function summaryResults(s: DemoSummary): ResultSet[] {
  const n = s.evalPrompts;
  return [
    { name: 'base', metrics: modelMetrics(s.base, n) },
    { name: 'SFT', metrics: { ...modelMetrics(s.sft, n), 'gold win rate over base': s.winSftOverBase } },
    { name: 'PPO', metrics: { ...modelMetrics(s.ppo, n), 'gold win rate over SFT': s.winPpoOverSft, 'gold win rate over base': s.winPpoOverBase, 'KL to SFT (nats per reply)': s.ppoKl, ...rlTimeMetrics(s, 'ppo') } },
    ...(s.grpo
      ? [
          {
            name: 'GRPO',
            metrics: {
              ...modelMetrics(s.grpo.eval, n),
              'gold win rate over SFT': s.grpo.winOverSft,
              'gold win rate over PPO': s.grpo.winOverPpo,
              'KL to SFT (nats per reply)': s.grpo.kl,
              ...rlTimeMetrics(s, 'grpo'),
            },
          },
        ]
      : []),
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
    ...(s.grpo
      ? [
          {
            name: 'reward over-optimisation along GRPO (held-out prompts)',
            xLabel: 'KL to the SFT reference (nats per reply)',
            yLabel: 'mean score',
            lines: [
              { name: 'reward model (proxy, normalised)', points: s.grpo.curve.map((c) => ({ x: c.kl, y: c.rm, label: `step ${c.step}` })) },
              { name: 'gold labeler (true)', points: s.grpo.curve.map((c) => ({ x: c.kl, y: c.gold, label: `step ${c.step}` })) },
            ],
          },
        ]
      : []),
  ];
  const total = s.times.reduce((a, t) => ({ wall: a.wall + t.wallS, cpu: a.cpu + t.cpuS }), { wall: 0, cpu: 0 });
  const notes = [
    `command: ${command}`,
    'task: customer-support replies that should follow a tone guide; the gold labeler (hidden rules + labeler noise) ranked the reward model\'s data and judges the win rates',
    `win rates: one sampled reply per model and held-out prompt (${n} prompts), compared by gold score; ties count half`,
    `time: ${total.wall.toFixed(0)} s wall, ${total.cpu.toFixed(0)} s CPU (${s.times.map((t) => `${t.stage} ${t.wallS.toFixed(0)}/${t.cpuS.toFixed(0)} s`).join(', ')})`,
    `rollouts vs updates, wall seconds per stage: ${stageSplit(s)}`,
    ...(s.grpo
      ? [
          'GRPO: the same SFT policy, reward model (plus PPO\'s missing-EOS penalty) and number of sampled replies as PPO; ' +
            `G = ${s.sizes.grpoGenerations} replies per prompt, group-relative advantages, k3 KL to SFT in the loss (beta ${s.sizes.grpoBeta}), no value head`,
        ]
      : []),
    ...(s.lora ? [loraLine(s)] : []),
  ];
  return createReport(`rlhf demo (seed ${s.seed}${s.quick ? ', --quick' : ''}${s.lora ? ', --lora' : ''})`, results, series, notes);
}

/** What LoRA trained at each stage (rlhf demo --lora). */
function loraLine(s: DemoSummary): string {
  const l = s.lora!;
  const whole = l.modulesToSave ? `, ${l.modulesToSave.join(', ')} trained whole` : '';
  return `LoRA at stages 1-3: r ${l.r}, alpha ${l.alpha}, on ${l.targetModules}${whole}; parameters trained: SFT ${s.trainable.sft}, reward model ${s.trainable.rm} (with its score head), PPO ${s.trainable.ppo} (with its value head), of ${s.params} in the model`;
}

const esc = (x: string) => x.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function samplesHtml(s: DemoSummary, count: number): string {
  const rows = s.samples
    .slice(0, count)
    .map((x) => {
      const cell = (text: string, gold: number) => `<td>${esc(text)}<br><i>gold ${gold.toFixed(2)}</i></td>`;
      const grpo = x.grpo !== undefined && x.goldGrpo !== undefined ? cell(x.grpo, x.goldGrpo) : '';
      return `<tr><td>${esc(x.prompt)}</td>${cell(x.base, x.goldBase)}${cell(x.sft, x.goldSft)}${cell(x.ppo, x.goldPpo)}${grpo}</tr>`;
    })
    .join('\n');
  const grpoHead = s.grpo ? '<th>GRPO</th>' : '';
  return `<h2>Samples side by side (first ${count} held-out prompts)</h2>\n<table>\n<tr><th>prompt</th><th>base</th><th>SFT</th><th>PPO</th>${grpoHead}</tr>\n${rows}\n</table>\n`;
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
    `Summary (seed ${s.seed}${s.quick ? ', --quick' : ''}${s.lora ? ', --lora' : ''}; ${s.evalPrompts} held-out prompts, one sampled reply per model)`,
    row(['model', 'gold score', 'RM score', 'right remedy', 'names prod.', 'words', 'gold win rate']),
    m('base', s.base, '-'),
    m('SFT', s.sft, `${pct(s.winSftOverBase.value)} vs base`),
    m('PPO', s.ppo, `${pct(s.winPpoOverSft.value)} vs SFT`),
    ...(s.grpo ? [m('GRPO', s.grpo.eval, `${pct(s.grpo.winOverSft.value)} vs SFT`)] : []),
    `  PPO over SFT: ${s.winPpoOverSft.wins} wins, ${s.winPpoOverSft.ties} ties, ${s.winPpoOverSft.losses} losses; 95% CI ${formatEstimate(s.winPpoOverSft)}`,
    `  PPO over base: ${pct(s.winPpoOverBase.value)}; 95% CI ${formatEstimate(s.winPpoOverBase)}`,
    `  KL(PPO || SFT): ${formatEstimate(s.ppoKl)} nats per reply`,
    ...(s.grpo
      ? [
          `  GRPO over SFT: ${s.grpo.winOverSft.wins} wins, ${s.grpo.winOverSft.ties} ties, ${s.grpo.winOverSft.losses} losses; 95% CI ${formatEstimate(s.grpo.winOverSft)}; GRPO over PPO ${pct(s.grpo.winOverPpo.value)}`,
          `  KL(GRPO || SFT): ${formatEstimate(s.grpo.kl)} nats per reply`,
        ]
      : []),
    `  reward model: held-out pairwise accuracy ${pct(s.rmAccuracy)} (${s.rmAccuracyPairs} pairs; noisy labels agree with gold on ${pct(s.labelerAgreement)})`,
    `  time: ${total.wall.toFixed(0)} s wall, ${total.cpu.toFixed(0)} s CPU; rollouts vs updates: ${stageSplit(s)}`,
    ...(s.lora ? [`  ${loraLine(s)}`] : []),
  ].join('\n');
}
