// Builds the example report shown in the README (docs/report.png): stories260K against a randomly
// initialised Llama of the same shape (what chance looks like) on subsets of TruthfulQA MC and BBQ, with
// the running MC2 mean as a series. Needs the built dists (npx tsup in native, data, core, eval).
//   node scripts/example-report.mjs [out.html] [tqaLimit] [bbqLimitPerFile]
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Llama, fromPretrained } from '@rlhf/core';
import { sharedPath } from '@rlhf/data';
import {
  createReport, evaluateBbq, evaluateTruthfulQaMc, loadBbq, loadPreamble, loadTruthfulQaJson, metricsOf, reportToHtml, reportToMarkdown,
} from '../dist/index.js';

const [out = 'report.html', tqaLimit = '60', bbqLimit = '20'] = process.argv.slice(2);
const pre = fromPretrained(sharedPath('models/stories260K/stories260K.bin'));
const trained = { model: pre.model, tokenizer: pre.tokenizer, stopTokens: pre.stopTokens };
const random = { model: new Llama(pre.model.config, { seed: 1 }), tokenizer: pre.tokenizer, stopTokens: pre.stopTokens };
const preamble = loadPreamble(sharedPath('data/truthfulqa/hitz_en_train.json'));
const tqa = loadTruthfulQaJson(sharedPath('data/truthfulqa/hitz_en_validation.json'), { limit: Number(tqaLimit) });
const bbqDir = sharedPath('data/bbq');
const bbq = readdirSync(bbqDir).filter((f) => f.endsWith('.jsonl')).sort().flatMap((f) => loadBbq(join(bbqDir, f), { limit: Number(bbqLimit) }));

const results = [], lines = [];
for (const [name, m] of [['random init', random], ['stories260K', trained]]) {
  const t = evaluateTruthfulQaMc(m, tqa, preamble);
  const b = evaluateBbq(m, bbq);
  const metrics = { ...metricsOf(t), ...metricsOf(b) };
  // overall BBQ figures only (the per-category ones are in metricsOf's output too), so the page fits a screenshot
  for (const k of Object.keys(metrics)) if (/^BBQ [A-Z]\w* (accuracy|S_)/.test(k)) delete metrics[k];
  results.push({ name, metrics });
  let s = 0;
  lines.push({ name, points: t.items.map((it, i) => ({ x: i + 1, y: (s += it.mc2) / (i + 1) })) });
}
const report = createReport(
  'stories260K vs a random-init Llama: TruthfulQA MC and BBQ (subsets)',
  results,
  [{ name: 'TruthfulQA MC2, running mean', xLabel: 'questions scored', yLabel: 'mean MC2', lines }],
  [`TruthfulQA: first ${tqa.length} questions of hitz_en_validation.json; BBQ: first ${bbqLimit} of each of the 5 category files (${bbq.length} examples).`],
);
writeFileSync(out, reportToHtml(report));
process.stdout.write(reportToMarkdown(report));
