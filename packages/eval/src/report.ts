/**
 * Reports: any number of named result sets (a model's metrics, each an Estimate) and named series (curves
 * such as the over-optimisation curve), rendered as JSON, a Markdown table, or one self-contained HTML page
 * whose charts are inline SVG (no network, no scripts, no web fonts: it opens from a file anywhere).
 */
import type { BbqResult, BbqScores } from './benchmarks/bbq';
import type { RewardAccuracyResult } from './benchmarks/reward-accuracy';
import type { ToxicityResult } from './benchmarks/toxicity';
import type { TruthfulQaGenResult, TruthfulQaMcResult } from './benchmarks/truthfulqa';
import { type Estimate, undefinedReason } from './stats';

export interface ResultSet {
  /** e.g. "base", "SFT", "PPO" */
  name: string;
  metrics: Record<string, Estimate>;
}

export interface SeriesPoint {
  x: number;
  y: number;
  /** interval of y, drawn as a band/whisker when given */
  lo?: number;
  hi?: number;
  label?: string;
}

export interface Series {
  /** chart title, e.g. "reward over-optimisation" */
  name: string;
  xLabel: string;
  yLabel: string;
  lines: Array<{ name: string; points: SeriesPoint[] }>;
}

export interface Report {
  title: string;
  results: ResultSet[];
  series?: Series[];
  /** lines shown under the title (what was run, with which command, caveats such as a proxy scorer) */
  notes?: string[];
  createdAt?: string;
}

export function createReport(title: string, results: ResultSet[], series: Series[] = [], notes: string[] = []): Report {
  const names = new Set<string>();
  for (const r of results) {
    if (names.has(r.name)) throw new Error(`createReport: two result sets are named ${JSON.stringify(r.name)}`);
    names.add(r.name);
  }
  return { title, results, series, notes, createdAt: new Date().toISOString() };
}

function bbqMetrics(prefix: string, s: BbqScores): Record<string, Estimate> {
  return {
    [`${prefix}accuracy`]: s.accuracy,
    [`${prefix}accuracy (ambiguous)`]: s.accuracyAmbig,
    [`${prefix}accuracy (disambiguated)`]: s.accuracyDisambig,
    [`${prefix}S_DIS`]: s.sDis,
    [`${prefix}S_AMB`]: s.sAmb,
  };
}

/** A benchmark result as flat named metrics (keys say the benchmark), for a ResultSet. */
export function metricsOf(result: TruthfulQaMcResult | TruthfulQaGenResult | BbqResult | ToxicityResult | RewardAccuracyResult): Record<string, Estimate> {
  switch (result.benchmark) {
    case 'truthfulqa-mc':
      return { 'TruthfulQA MC1': result.mc1, 'TruthfulQA MC2': result.mc2 };
    case 'truthfulqa-gen': {
      const out: Record<string, Estimate> = {};
      for (const [k, m] of Object.entries(result.metrics)) {
        out[`TruthfulQA ${k} max`] = m.max;
        out[`TruthfulQA ${k} diff`] = m.diff;
        out[`TruthfulQA ${k} acc`] = m.acc;
      }
      return out;
    }
    case 'bbq': {
      const out = bbqMetrics('BBQ ', result.overall);
      for (const [c, s] of Object.entries(result.byCategory)) Object.assign(out, bbqMetrics(`BBQ ${c} `, s));
      return out;
    }
    case 'realtoxicityprompts': {
      const tag = result.scorer.isProxy ? ' [proxy scorer]' : '';
      return {
        [`RTP expected max toxicity${tag}`]: result.scores.expectedMaxToxicity,
        [`RTP toxicity probability${tag}`]: result.scores.toxicityProbability,
        [`RTP toxic fraction${tag}`]: result.scores.toxicFraction,
        'RTP prompts: mean Perspective toxicity (file)': result.fileScores.promptMean,
      };
    }
    case 'reward-accuracy':
      return { 'reward-model pairwise accuracy': result.accuracy, 'reward-model mean margin (chosen - rejected)': result.meanMargin };
  }
}

export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? x.toExponential(2) : x.toFixed(a >= 100 ? 1 : 3);
}

/** Axis ticks and x values: integers as they are, other numbers without trailing zeros. */
export function formatAxis(x: number): string {
  if (Number.isInteger(x) && Math.abs(x) < 1e5) return String(x);
  const f = formatNumber(x);
  return f.includes('e') ? f : f.replace(/\.?0+$/, '');
}

export function formatEstimate(e: Estimate | undefined): string {
  if (!e) return '–';
  if (!Number.isFinite(e.value)) return `n/a: ${undefinedReason(e)} (n=${e.n})`;
  const ci = e.method === 'exact' || !Number.isFinite(e.ci[0]) ? '' : ` [${formatNumber(e.ci[0])}, ${formatNumber(e.ci[1])}]`;
  return `${formatNumber(e.value)}${ci} (n=${e.n})`;
}

function metricNames(results: ResultSet[]): string[] {
  const seen: string[] = [];
  for (const r of results) for (const k of Object.keys(r.metrics)) if (!seen.includes(k)) seen.push(k);
  return seen;
}

const isEstimate = (v: unknown): v is Estimate =>
  typeof v === 'object' && v !== null && typeof (v as Estimate).value === 'number' && typeof (v as Estimate).n === 'number' && Array.isArray((v as Estimate).ci) && 'method' in v;

/** JSON: every number keeps its n and interval; an undefined one is null with its reason (never NaN). */
export function reportToJson(report: Report): string {
  const replace = (_k: string, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return null;
    if (isEstimate(v) && !Number.isFinite(v.value)) return { ...v, reason: undefinedReason(v) };
    return v;
  };
  return `${JSON.stringify(report, replace, 2)}\n`;
}

const mdCell = (s: string) => s.replace(/\|/g, '\\|');

/** One row per metric, one column per result set: value [95% interval] (n). */
export function reportToMarkdown(report: Report): string {
  const lines = [`# ${report.title}`, ''];
  for (const n of report.notes ?? []) lines.push(`> ${n}`);
  if (report.notes?.length) lines.push('');
  if (report.results.length) {
    lines.push(`| metric | ${report.results.map((r) => mdCell(r.name)).join(' | ')} |`);
    lines.push(`| --- | ${report.results.map(() => '---').join(' | ')} |`);
    for (const m of metricNames(report.results)) lines.push(`| ${mdCell(m)} | ${report.results.map((r) => formatEstimate(r.metrics[m])).join(' | ')} |`);
    lines.push('', 'Values: estimate [95% interval] (n items).');
  }
  for (const s of report.series ?? []) {
    lines.push('', `## ${s.name}`, '', `| series | ${mdCell(s.xLabel)} | ${mdCell(s.yLabel)} |`, '| --- | --- | --- |');
    for (const l of s.lines) for (const p of l.points) lines.push(`| ${mdCell(l.name)}${p.label ? ` (${mdCell(p.label)})` : ''} | ${formatAxis(p.x)} | ${Number.isFinite(p.y) ? formatNumber(p.y) : 'n/a'} |`);
  }
  return `${lines.join('\n')}\n`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// a colour-blind-safe palette (Okabe-Ito)
const COLOURS = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];

/** Tick values covering [lo, hi] at a round step. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** Bars for one metric, one per result set, with the 95% interval as a whisker. */
function barChart(metric: string, results: ResultSet[]): string {
  const W = 360, H = 220, L = 48, R = 10, T = 28, B = 40;
  const es = results.map((r) => r.metrics[metric]);
  const vals = es.flatMap((e) => (e ? [e.value, e.ci[0], e.ci[1]] : [])).filter(Number.isFinite);
  let lo = Math.min(0, ...vals), hi = Math.max(0, ...vals);
  if (hi === lo) hi = lo + 1;
  const pad = (hi - lo) * 0.05;
  if (lo < 0) lo -= pad;
  hi += pad;
  const y = (v: number) => T + ((hi - v) / (hi - lo)) * (H - T - B);
  const bw = (W - L - R) / Math.max(1, results.length);
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(metric)}">`];
  parts.push(`<text x="${W / 2}" y="16" text-anchor="middle" class="t">${esc(metric)}</text>`);
  for (const t of ticks(lo, hi)) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" class="g"/>`);
    parts.push(`<text x="${L - 4}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" class="a">${formatAxis(t)}</text>`);
  }
  es.forEach((e, i) => {
    const x0 = L + i * bw + bw * 0.15, w = bw * 0.7, cx = x0 + w / 2;
    const col = COLOURS[i % COLOURS.length];
    if (e && Number.isFinite(e.value)) {
      const top = Math.min(y(e.value), y(0)), h = Math.abs(y(e.value) - y(0));
      parts.push(`<rect x="${x0.toFixed(1)}" y="${top.toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(0.5, h).toFixed(1)}" fill="${col}"><title>${esc(results[i].name)}: ${esc(formatEstimate(e))}</title></rect>`);
      if (Number.isFinite(e.ci[0]) && e.method !== 'exact') {
        const [a, b] = [y(e.ci[0]), y(e.ci[1])];
        parts.push(`<path d="M${cx} ${a.toFixed(1)}V${b.toFixed(1)}M${cx - 6} ${a.toFixed(1)}h12M${cx - 6} ${b.toFixed(1)}h12" class="w"/>`);
      }
      parts.push(`<text x="${cx}" y="${(Math.min(top, Number.isFinite(e.ci[1]) ? y(e.ci[1]) : top) - 3).toFixed(1)}" text-anchor="middle" class="v">${formatNumber(e.value)}</text>`);
    } else if (e) {
      parts.push(`<text x="${cx}" y="${(y(0) - 3).toFixed(1)}" text-anchor="middle" class="v"><title>${esc(undefinedReason(e))}</title>n/a</text>`);
    }
    parts.push(`<text x="${cx}" y="${H - B + 14}" text-anchor="middle" class="a">${esc(results[i].name)}</text>`);
    if (e) parts.push(`<text x="${cx}" y="${H - B + 27}" text-anchor="middle" class="n">n=${e.n}</text>`);
  });
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(0).toFixed(1)}" y2="${y(0).toFixed(1)}" class="z"/>`, '</svg>');
  return parts.join('');
}

/** A line chart of one series: a line per named line, interval bands where points carry lo/hi. */
function lineChart(s: Series): string {
  const W = 560, H = 300, L = 56, R = 130, T = 28, B = 44;
  // a point without a finite value is left out of the chart (the Markdown table lists it as n/a)
  s = { ...s, lines: s.lines.map((l) => ({ ...l, points: l.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)) })) };
  const pts = s.lines.flatMap((l) => l.points);
  const xs = pts.map((p) => p.x), ys = pts.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y]).filter(Number.isFinite);
  let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (!(x1 > x0)) x1 = x0 + 1;
  if (!(y1 > y0)) y1 = y0 + 1;
  const py = (y1 - y0) * 0.08;
  y0 -= py;
  y1 += py;
  const X = (v: number) => L + ((v - x0) / (x1 - x0)) * (W - L - R);
  const Y = (v: number) => T + ((y1 - v) / (y1 - y0)) * (H - T - B);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(s.name)}">`];
  parts.push(`<text x="${(L + W - R) / 2}" y="16" text-anchor="middle" class="t">${esc(s.name)}</text>`);
  for (const t of ticks(y0, y1)) parts.push(`<line x1="${L}" x2="${W - R}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" class="g"/><text x="${L - 4}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end" class="a">${formatAxis(t)}</text>`);
  for (const t of ticks(x0, x1)) parts.push(`<text x="${X(t).toFixed(1)}" y="${H - B + 14}" text-anchor="middle" class="a">${formatAxis(t)}</text>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle" class="a">${esc(s.xLabel)}</text>`);
  parts.push(`<text transform="translate(12 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle" class="a">${esc(s.yLabel)}</text>`);
  s.lines.forEach((l, i) => {
    const col = COLOURS[i % COLOURS.length];
    const p = [...l.points].sort((a, b) => a.x - b.x);
    const banded = p.filter((q) => q.lo !== undefined && q.hi !== undefined);
    if (banded.length > 1) {
      const d = `M${banded.map((q) => `${X(q.x).toFixed(1)} ${Y(q.hi!).toFixed(1)}`).join('L')}L${[...banded].reverse().map((q) => `${X(q.x).toFixed(1)} ${Y(q.lo!).toFixed(1)}`).join('L')}Z`;
      parts.push(`<path d="${d}" fill="${col}" opacity="0.15"/>`);
    }
    if (p.length) parts.push(`<polyline fill="none" stroke="${col}" stroke-width="2" points="${p.map((q) => `${X(q.x).toFixed(1)},${Y(q.y).toFixed(1)}`).join(' ')}"/>`);
    for (const q of p) parts.push(`<circle cx="${X(q.x).toFixed(1)}" cy="${Y(q.y).toFixed(1)}" r="3" fill="${col}"><title>${esc(l.name)}${q.label ? ` ${esc(q.label)}` : ''}: (${formatNumber(q.x)}, ${formatNumber(q.y)})</title></circle>`);
    parts.push(`<rect x="${W - R + 10}" y="${T + i * 18}" width="12" height="12" fill="${col}"/><text x="${W - R + 26}" y="${T + i * 18 + 10}" class="a">${esc(l.name)}</text>`);
  });
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" class="f"/>`, '</svg>');
  return parts.join('');
}

/** One self-contained page: notes, the table, a bar chart per metric (models side by side), the series. */
export function reportToHtml(report: Report): string {
  const metrics = metricNames(report.results);
  const table = report.results.length
    ? `<table><thead><tr><th>metric</th>${report.results.map((r) => `<th>${esc(r.name)}</th>`).join('')}</tr></thead><tbody>${metrics
        .map((m) => `<tr><td>${esc(m)}</td>${report.results.map((r) => `<td>${esc(formatEstimate(r.metrics[m]))}</td>`).join('')}</tr>`)
        .join('')}</tbody></table><p class="n">Values: estimate [95% interval] (n items). Whiskers on the bars are the same intervals.</p>`
    : '';
  const css = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{border:1px solid #eee;background:#fff}
.t{font-size:13px;font-weight:600}.a{font-size:11px;fill:#444}.n{font-size:10px;fill:#777;color:#666}.v{font-size:10px;fill:#222}
.g{stroke:#eee}.z{stroke:#888}.w{stroke:#222;stroke-width:1.2;fill:none}.f{fill:none;stroke:#bbb}.note{background:#fff7e0;border-left:4px solid #E69F00;padding:6px 10px;font-size:13px}`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(report.title)}</title><style>${css}</style></head><body>
<h1>${esc(report.title)}</h1>
${(report.notes ?? []).map((n) => `<p class="note">${esc(n)}</p>`).join('\n')}
${report.createdAt ? `<p class="n">created ${esc(report.createdAt)}</p>` : ''}
${table}
${metrics.length ? `<h2>Metrics, side by side</h2><div class="charts">${metrics.map((m) => barChart(m, report.results)).join('\n')}</div>` : ''}
${(report.series ?? []).length ? `<h2>Series</h2><div class="charts">${report.series!.map(lineChart).join('\n')}</div>` : ''}
</body></html>
`;
}
