/**
 * `rlhf eval BENCH --model PATH`: TruthfulQA (multiple choice or generation), BBQ or RealToxicityPrompts on
 * one model or several side by side (`--model base=a.bin --model ppo=out/ppo`); `reward-accuracy` takes reward
 * model folders (`rlhf rm` output) and a preference / comparison file (default: HH-RLHF's harmless test split);
 * `win-rate` completes each prompt of a file with two models and has a reward model judge them; `kl` estimates
 * KL(policy || reference) on a file's prompts from samples of the policy. Prints a Markdown table;
 * --json writes every number with its n and interval plus the per-item details; --report writes a
 * self-contained HTML page with charts. Default data: the files in ../shared/data when that folder is found.
 */
import { accessSync, constants, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { DEVICES, fromPretrained, loadRewardModel, loadTokenizer, loadTokenizerFile, resolveChatTemplate, withChatTemplate, type Device, type ProgressReporter, type Tokenizer } from '@rlhf/core';
import { formatIssue, readAll, sharedPath, type DataRecord, type Text } from '@rlhf/data';
import {
  createReport,
  evaluateBbq,
  evaluateRewardAccuracy,
  evaluateToxicity,
  evaluateTruthfulQaGen,
  evaluateTruthfulQaMc,
  findPreambleBeside,
  LexiconToxicityScorer,
  loadBbq,
  loadPreamble,
  loadRealToxicityPrompts,
  loadTruthfulQa,
  metricsOf,
  PerspectiveScorer,
  reportToHtml,
  reportToJson,
  reportToMarkdown,
  klToReference,
  rewardJudge,
  rewardModelReward,
  winRateOfModels,
  type EvalModel,
  type ResultSet,
} from '@rlhf/eval';
import { MAX_SEED } from './generate';
import { CHAT_TEMPLATE_HELP, parseDevice, progressReporter, singleProcessOnly } from './train-common';

export const BENCHMARKS = ['truthfulqa', 'truthfulqa-gen', 'bbq', 'toxicity', 'reward-accuracy', 'win-rate', 'kl'] as const;
type Bench = (typeof BENCHMARKS)[number];

export interface EvalIo {
  out(s: string): void;
  progress(): ProgressReporter;
}

const defaultIo: EvalIo = { out: (s) => process.stdout.write(s), progress: progressReporter };

interface EvalFlags {
  model: string[];
  tokenizer?: string;
  chatTemplate?: string;
  data?: string;
  limit?: number;
  json?: string;
  report?: string;
  markdown?: string;
  preamble?: string;
  sharePrefix: boolean;
  scorer: string;
  k: number;
  maxNewTokens?: number;
  seed: number;
  judge?: string;
  samples: number;
  temperature: number;
  device: string;
}

function positiveInt(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isInteger(x) || x < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return x;
  };
}

function nonNegativeNumber(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || x < 0) throw new Error(`--${name} must be a number >= 0, got ${JSON.stringify(v)}`);
    return x;
  };
}

/** A seed: the sampler's generator has 32 bits of state, so a larger seed would repeat a smaller one's samples. */
function seedArg(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isInteger(x) || x < 0 || x > MAX_SEED) throw new Error(`--${name} must be an integer in [0, ${MAX_SEED}], got ${JSON.stringify(v)}`);
    return x;
  };
}

/**
 * --json / --report / --markdown are checked before any work, so that an evaluation is not lost to a typo
 * in an output path after it has run: not a folder, and its folder exists and can be written.
 */
function checkOutputPaths(o: EvalFlags): void {
  for (const flag of ['json', 'report', 'markdown'] as const) {
    const path = o[flag];
    if (path === undefined) continue;
    if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`--${flag} ${path} is a folder; give a file path`);
    const dir = dirname(resolve(path));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`--${flag} ${path}: the folder ${dir} does not exist`);
    try {
      accessSync(existsSync(path) ? path : dir, constants.W_OK);
    } catch {
      throw new Error(`--${flag} ${path}: ${existsSync(path) ? 'the file' : `the folder ${dir}`} is not writable`);
    }
  }
}

/** --max-new-tokens must leave room for at least one prompt token in each model's window. */
function checkRoom(name: string, m: EvalModel, maxNewTokens: number | undefined): void {
  if (maxNewTokens !== undefined && maxNewTokens >= m.model.maxPositions) {
    throw new Error(`--max-new-tokens ${maxNewTokens}: ${name}'s window is ${m.model.maxPositions} positions, which leaves no room for the prompt; give at most ${m.model.maxPositions - 1}`);
  }
}

/**
 * "name=path" or "path", named after the model: the file or folder, or for the folders the trainers write
 * (`final`, `checkpoint-N`) the run folder above them (`runs/sft/final` is "sft", `runs/sft/checkpoint-4`
 * "sft/checkpoint-4"), so that trained models do not all show as "final".
 */
export function parseModelSpec(spec: string): { name: string; path: string } {
  const eq = spec.indexOf('=');
  if (eq > 0 && !existsSync(spec)) return { name: spec.slice(0, eq), path: spec.slice(eq + 1) };
  const abs = resolve(spec);
  const base = basename(abs).replace(/\.bin$/, '');
  const run = basename(dirname(abs));
  if (base === 'final' && run) return { name: run, path: spec };
  if (/^checkpoint-\d+$/.test(base) && run) return { name: `${run}/${base}`, path: spec };
  return { name: base, path: spec };
}

/** Every --model (and --judge) path exists, checked before any work starts. */
function checkModelPaths(specs: { name: string; path: string }[], judge: string | undefined): void {
  for (const s of specs) {
    if (!existsSync(s.path)) throw new Error(`--model ${s.path} does not exist${s.path.includes('=') ? '' : ' (name=path names a model)'}`);
  }
  if (judge !== undefined && !existsSync(judge)) throw new Error(`--judge ${judge} does not exist`);
}

function defaultData(bench: Bench): string {
  const rel = {
    truthfulqa: 'data/truthfulqa/hitz_en_validation.json',
    'truthfulqa-gen': 'data/truthfulqa/hitz_en_validation.json',
    bbq: 'data/bbq',
    toxicity: 'data/realtoxicityprompts/decodingtrust_toxic.jsonl',
    'reward-accuracy': 'data/hh-rlhf/harmless-base-test.jsonl.gz',
    'win-rate': 'data/hh-rlhf/harmless-base-test.jsonl.gz',
    kl: 'data/hh-rlhf/harmless-base-test.jsonl.gz',
  }[bench];
  try {
    return sharedPath(rel);
  } catch {
    throw new Error(`no --data given and the shared data folder (a shared/ with data/ and models/ in this folder or one above it) was not found; pass --data PATH or set RLHF_SHARED_DIR (${bench})`);
  }
}

/** --chat-template's template, resolved once (a bad one refused before any model is read). */
interface TokenizerFlags {
  tokenizer?: string;
  chatTemplate?: string;
}

function loadModel(spec: { name: string; path: string }, flags: TokenizerFlags, device: Device): EvalModel {
  const pre = fromPretrained(spec.path, flags.tokenizer ? { tokenizer: loadTokenizerFile(flags.tokenizer) } : {});
  if (!pre.tokenizer) throw new Error(`${spec.path}: no tokenizer found beside the model; pass --tokenizer`);
  return { model: pre.model.to(device), tokenizer: withTemplate(pre.tokenizer, flags), stopTokens: pre.stopTokens };
}

function withTemplate(tokenizer: Tokenizer, flags: TokenizerFlags): Tokenizer {
  return flags.chatTemplate === undefined ? tokenizer : withChatTemplate(tokenizer, resolveChatTemplate(flags.chatTemplate, '--chat-template'));
}

export function registerEval(program: Command, io: EvalIo = defaultIo): void {
  program
    .command('eval')
    .description('run a benchmark (truthfulqa | truthfulqa-gen | bbq | toxicity) on one or more models, reward-accuracy on reward models, win-rate of one model over another, or kl of a policy to its reference')
    .argument('<bench>', `benchmark: ${BENCHMARKS.join(' | ')}`)
    .requiredOption('--model <path>', 'model folder or llama2.c .bin (reward-accuracy: a reward model folder), named after its folder (a run\'s final/ or checkpoint-N/: after the run folder); name=path names it; repeat to compare models', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--tokenizer <path>', 'tokenizer file (default: the one beside each model)')
    .option('--chat-template <name|file>', `${CHAT_TEMPLATE_HELP}; for every model (reward-accuracy, win-rate, kl: HH-RLHF's records are conversations)`)
    .option('--data <path>', 'benchmark file (BBQ: a .jsonl or a folder of them; reward-accuracy: preferences or comparisons in any format `rlhf data` reads); default: ../shared/data')
    .option('--limit <n>', 'first n items (BBQ: of each category file)', positiveInt('limit'))
    .option('--json <file>', 'write the report with per-item details as JSON')
    .option('--report <file>', 'write a self-contained HTML report with charts')
    .option('--markdown <file>', 'write the Markdown table to a file as well')
    .option('--preamble <file>', 'TruthfulQA few-shot file in the JSON layout (default: hitz_en_train.json beside the data)')
    .option('--no-share-prefix', 'score every choice with its full prompt (no KV-cache prefix sharing)')
    .option('--scorer <name>', 'toxicity scorer: local (offline proxy) | perspective (PERSPECTIVE_API_KEY, PERSPECTIVE_API_URL)', 'local')
    .option('--k <n>', 'toxicity: continuations per prompt', positiveInt('k'), 25)
    .option('--max-new-tokens <n>', 'generation length (truthfulqa-gen 50, toxicity 20)', positiveInt('max-new-tokens'))
    .option('--seed <s>', `sampling seed, 0 to ${MAX_SEED} (toxicity, win-rate, kl)`, seedArg('seed'), 0)
    .option('--samples <n>', 'kl: sampled replies per prompt', positiveInt('samples'), 1)
    .option('--judge <dir>', 'win-rate: the reward model folder that judges (what `rlhf rm` writes)')
    .option('--temperature <t>', 'win-rate, kl: sampling temperature (win-rate: 0 = greedy; kl: > 0, both models\' logits divided by it, as PPO scores its samples)', nonNegativeNumber('temperature'), 1)
    .option('--device <name>', `where the models run: ${DEVICES.join(' | ')} (cuda: rlhf_cuda.node and an NVIDIA GPU; emulated: the test device)`, 'cpu')
    .action(async (benchArg: string, o: EvalFlags) => {
      singleProcessOnly('eval');
      if (!(BENCHMARKS as readonly string[]).includes(benchArg)) throw new Error(`unknown benchmark ${JSON.stringify(benchArg)}; choose one of ${BENCHMARKS.join(', ')}`);
      const bench = benchArg as Bench;
      if (o.scorer !== 'local' && o.scorer !== 'perspective') throw new Error(`--scorer must be local or perspective, got ${JSON.stringify(o.scorer)}`);
      // commander counts the empty default list as given, so the required check is ours
      if (!o.model.length) throw new Error('--model is required: a model folder or llama2.c .bin (repeat as name=path to compare)');
      const specs = o.model.map(parseModelSpec);
      const names = new Set<string>();
      for (const s of specs) {
        if (names.has(s.name)) throw new Error(`two models are named ${JSON.stringify(s.name)}; use --model name=path`);
        names.add(s.name);
      }
      checkOutputPaths(o);
      const device = parseDevice(o.device);
      const data = o.data ?? defaultData(bench);
      if (!existsSync(data)) throw new Error(`--data ${data} does not exist`);
      checkModelPaths(specs, o.judge);
      if (bench === 'win-rate' || bench === 'kl') {
        await (bench === 'win-rate' ? winRateCommand : klCommand)(specs, data, o, io, device);
        return;
      }

      // load the items once, for every model
      const limit = o.limit;
      let run: (spec: { name: string; path: string }, onProgress: (d: number, t: number) => void) => Promise<{ metrics: ResultSet['metrics']; detail: unknown; notes: string[] }>;
      let total: number;
      const dataNotes: string[] = [];
      if (bench === 'truthfulqa' || bench === 'truthfulqa-gen') {
        const items = loadTruthfulQa(data, { limit });
        const pre = o.preamble ?? findPreambleBeside(data);
        if (!pre) throw new Error(`no few-shot preamble: pass --preamble (a file like hitz_en_train.json); none beside ${data}`);
        const preamble = loadPreamble(pre);
        total = items.length;
        run = async (spec, onProgress) => {
          const m = loadModel(spec, o, device);
          if (bench === 'truthfulqa-gen') checkRoom(spec.name, m, o.maxNewTokens);
          const r = bench === 'truthfulqa' ? evaluateTruthfulQaMc(m, items, preamble, { sharePrefix: o.sharePrefix, onProgress }) : evaluateTruthfulQaGen(m, items, preamble, { onProgress, maxNewTokens: o.maxNewTokens });
          const notes = 'compute' in r ? [`${r.compute.positionsRun} token positions run in ${r.compute.seconds.toFixed(1)} s (prefix sharing ${o.sharePrefix ? 'on' : 'off'}); ${r.compute.truncatedPrompts} prompts truncated`] : [];
          return { metrics: metricsOf(r), detail: r, notes };
        };
      } else if (bench === 'bbq') {
        const files = statSync(data).isDirectory() ? readdirSync(data).filter((f) => f.endsWith('.jsonl')).sort().map((f) => join(data, f)) : [data];
        if (!files.length) throw new Error(`--data ${data}: no .jsonl files in the folder`);
        const items = files.flatMap((f) => loadBbq(f, { limit }));
        total = items.length;
        run = async (spec, onProgress) => {
          const r = evaluateBbq(loadModel(spec, o, device), items, { sharePrefix: o.sharePrefix, onProgress });
          return { metrics: metricsOf(r), detail: r, notes: [`${r.compute.positionsRun} token positions run in ${r.compute.seconds.toFixed(1)} s (prefix sharing ${o.sharePrefix ? 'on' : 'off'})`] };
        };
      } else if (bench === 'reward-accuracy') {
        const read = await readRecords(data);
        dataNotes.push(...read.notes);
        const records = limit ? read.records.slice(0, limit) : read.records;
        total = records.length;
        run = async (spec, onProgress) => {
          const { model, normalization, tokenizer } = loadJudge(spec.path, 'reward-accuracy: --model', o, device);
          const r = evaluateRewardAccuracy(model, tokenizer, records, { normalization, onProgress });
          const notes = [`${r.pairs} pairs from ${r.prompts} prompts; the interval resamples prompts${normalization ? '; margins on the normalised scale' : ''}`];
          return { metrics: metricsOf(r), detail: { ...r, items: r.items }, notes };
        };
      } else {
        const items = loadRealToxicityPrompts(data, { limit });
        const scorer = o.scorer === 'perspective' ? new PerspectiveScorer() : new LexiconToxicityScorer();
        total = items.length;
        run = async (spec, onProgress) => {
          const m = loadModel(spec, o, device);
          checkRoom(spec.name, m, o.maxNewTokens);
          const r = await evaluateToxicity(m, items, scorer, { k: o.k, maxNewTokens: o.maxNewTokens, seed: o.seed, onProgress });
          const notes = scorer.isProxy ? [`Toxicity scored by ${scorer.name}: a proxy, not comparable with Perspective API figures.`] : [];
          return { metrics: metricsOf(r), detail: r, notes };
        };
      }

      // an empty file (or folder of them) would otherwise print a table of NaN as if the run had measured something
      if (total === 0) throw new Error(`--data ${data}: no ${bench} items in it (an empty file?)`);
      const results: ResultSet[] = [];
      const details: Record<string, unknown> = {};
      const notes = [`rlhf eval ${bench} on ${data}${limit ? ` (first ${limit}${bench === 'bbq' ? ' per file' : ''})` : ''}`, ...dataNotes];
      for (const spec of specs) {
        const bar = io.progress();
        bar.start(`${bench} ${spec.name}`, total, 0);
        try {
          // about 100 updates per run: plain-line progress prints every tenth update, the TTY bar redraws
          const every = Math.max(1, Math.floor(total / 100));
          const r = await run(spec, (d) => {
            if (d % every === 0 || d === total) bar.update(d, {});
          });
          results.push({ name: spec.name, metrics: r.metrics });
          details[spec.name] = r.detail;
          notes.push(...r.notes.map((n) => `${spec.name}: ${n}`));
        } finally {
          bar.stop();
        }
      }
      emitReport(createReport(`rlhf eval ${bench}`, results, [], notes), o, io, details);
    });
}

/** A reward model folder (`rlhf rm` output) with its tokenizer (or --tokenizer) and normalisation. */
function loadJudge(path: string, what: string, flags: TokenizerFlags, device: Device) {
  const tokenizerPath = flags.tokenizer;
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new Error(`${what} ${path} is not a folder; pass a reward model folder (what \`rlhf rm\` writes)`);
  }
  const { model, normalization } = loadRewardModel(path);
  model.to(device);
  let tokenizer;
  try {
    tokenizer = tokenizerPath ? loadTokenizerFile(tokenizerPath) : loadTokenizer(path);
  } catch (e) {
    if (tokenizerPath || !/has no tokenizer\.json and no llama2\.c/.test((e as Error).message)) throw e;
    // a trainer's checkpoint-N folder, or a model saved without its tokenizer
    throw new Error(`${what} ${path} has no tokenizer (tokenizer.json, tokenizer.bin or one tok*.bin): pass --tokenizer, or save the reward model with savePretrained(rm, dir, { tokenizer, normalization })`, { cause: e });
  }
  return { model, normalization, tokenizer: withTemplate(tokenizer, flags) };
}

/**
 * `rlhf eval win-rate --model a=PATH --model b=PATH --judge RM_DIR`: A and B each complete every prompt of the
 * file once (sampled at --temperature, seeded; 0 = greedy), the reward model scores both replies, and the higher score wins
 * (equal scores tie, counting half). The win rate of A over B comes with a normal interval on the mean outcome.
 */
async function winRateCommand(specs: { name: string; path: string }[], data: string, o: EvalFlags, io: EvalIo, device: Device): Promise<void> {
  if (specs.length !== 2) throw new Error(`win-rate needs exactly two --model (A, then B), got ${specs.length}`);
  if (!o.judge) throw new Error('win-rate needs --judge: the reward model folder that judges the replies');
  const judge = loadJudge(o.judge, '--judge', { chatTemplate: o.chatTemplate }, device);
  const { prompts, notes: dataNotes } = await readPrompts(data, o.limit);
  const [a, b] = specs.map((s) => loadModel(s, o, device));
  specs.forEach((s, i) => checkRoom(s.name, [a, b][i], o.maxNewTokens));
  const bar = io.progress();
  bar.start(`win-rate ${specs[0].name} over ${specs[1].name}`, 1, 0);
  let r;
  try {
    r = await winRateOfModels(a, b, prompts, rewardJudge(rewardModelReward(judge.model, judge.tokenizer, judge.normalization)), {
      maxNewTokens: o.maxNewTokens ?? 32,
      seed: o.seed,
      temperature: o.temperature,
    });
    bar.update(1, {});
  } finally {
    bar.stop();
  }
  const name = `${specs[0].name} over ${specs[1].name}`;
  const wr = r.winRate;
  const notes = [
    `rlhf eval win-rate on ${data}${o.limit ? ` (first ${o.limit})` : ''}: one ${o.temperature === 0 ? 'greedy' : `sampled (temperature ${o.temperature})`} reply per model and prompt, judged by ${o.judge}`,
    `${name}: ${wr.wins} wins, ${wr.ties} ties, ${wr.losses} losses`,
    ...dataNotes,
  ];
  const report = createReport('rlhf eval win-rate', [{ name, metrics: { 'win rate (reward-model judge)': wr } }], [], notes);
  emitReport(report, o, io, { prompts, [specs[0].name]: r.completionsA, [specs[1].name]: r.completionsB, outcomes: r.outcomes });
}

/** Records shown by file and line in the report's notes when the reader drops some. */
const SHOWN_DROPPED = 3;

/**
 * Every record of a data file that the reader keeps, with report notes that say how many it dropped and why
 * (the first few by file and line), so that a count is never silently short. A file damaged as a whole, a
 * file of no known layout, or one with no usable record is an error.
 */
async function readRecords(data: string): Promise<{ records: DataRecord[]; notes: string[] }> {
  let read;
  try {
    read = await readAll(data);
  } catch (e) {
    // the data reader's own hint names a flag of `rlhf data`, which `rlhf eval` does not have
    throw new Error(`--data: ${(e as Error).message.replace(/; give --format$/, ' (expected preference, comparison or prompt records)')}`);
  }
  const { records, report } = read;
  const fileProblem = report.fileIssues[0];
  if (fileProblem) throw new Error(`--data ${formatIssue(fileProblem)}`);
  const errors = report.issues.filter((i) => i.severity === 'error');
  if (!records.length) throw new Error(`--data ${data}: no usable record${errors.length ? ` (${errors.slice(0, SHOWN_DROPPED).map(formatIssue).join('; ')})` : ''}`);
  const notes: string[] = [];
  const copies = report.warnedBy.get('duplicate-record') ?? 0;
  if (copies > 0) notes.push(`${copies} exact duplicate record${copies === 1 ? '' : 's'} of ${data} kept (each counts again, as in training); \`rlhf data convert --dedupe record\` removes them`);
  if (report.dropped > 0) {
    notes.push(`${report.dropped} record${report.dropped === 1 ? '' : 's'} of ${data} skipped as unreadable (${errors.slice(0, SHOWN_DROPPED).map(formatIssue).join('; ')}${report.dropped > SHOWN_DROPPED ? '; …' : ''}); \`rlhf data validate\` lists every problem`);
  }
  return { records, notes };
}

/** The prompt of every record of a file (text or chat messages; any record kind that has one), first `limit`. */
async function readPrompts(data: string, limit: number | undefined): Promise<{ prompts: Text[]; notes: string[] }> {
  const { records: all, notes } = await readRecords(data);
  const prompts = (limit ? all.slice(0, limit) : all).map((r, i) => {
    if (!('prompt' in r) || r.prompt === undefined) throw new Error(`--data ${data}: record ${i} (kind ${r.kind}) has no prompt`);
    return r.prompt;
  });
  if (!prompts.length) throw new Error(`--data ${data}: no records`);
  return { prompts, notes };
}

/**
 * `rlhf eval kl --model policy=PATH --model ref=PATH`: KL(policy || reference) in nats per reply, the k1
 * estimator over `--samples` replies per prompt sampled from the policy at --temperature, each scored under
 * both models (which must share the tokenizer) with their logits divided by the same temperature.
 */
async function klCommand(specs: { name: string; path: string }[], data: string, o: EvalFlags, io: EvalIo, device: Device): Promise<void> {
  if (specs.length !== 2) throw new Error(`kl needs exactly two --model (the policy, then its reference), got ${specs.length}`);
  if (!(o.temperature > 0)) throw new Error('kl needs --temperature > 0: greedy replies are not samples of a distribution');
  const { prompts, notes: dataNotes } = await readPrompts(data, o.limit);
  const [policy, reference] = specs.map((s) => loadModel(s, o, device));
  if (policy.tokenizer.vocabSize !== reference.tokenizer.vocabSize) {
    throw new Error(`kl: ${specs[0].name} and ${specs[1].name} have different vocabularies (${policy.tokenizer.vocabSize} and ${reference.tokenizer.vocabSize} tokens); they must share the tokenizer`);
  }
  // vocabularies of the same size can still map ids to other text: the reference would score other words
  const probe = typeof prompts[0] === 'string' ? prompts[0] : '';
  for (const text of ['Human: How do I bake bread at home? Assistant: Mix 500 g of flour, 10 g of salt and yeast.', probe]) {
    const x = policy.tokenizer.encode(text), y = reference.tokenizer.encode(text);
    if (x.length !== y.length || x.some((t, i) => t !== y[i])) {
      throw new Error(`kl: ${specs[0].name} and ${specs[1].name} have tokenizers of the same size (${policy.tokenizer.vocabSize} tokens) that encode text differently; they must share the tokenizer`);
    }
  }
  specs.forEach((s, i) => checkRoom(s.name, [policy, reference][i], o.maxNewTokens));
  const bar = io.progress();
  bar.start(`kl ${specs[0].name} to ${specs[1].name}`, 1, 0);
  let kl;
  try {
    kl = klToReference(policy, reference, prompts, { samples: o.samples, maxNewTokens: o.maxNewTokens ?? 32, seed: o.seed, temperature: o.temperature });
    bar.update(1, {});
  } finally {
    bar.stop();
  }
  const name = `${specs[0].name} to ${specs[1].name}`;
  const notes = [`rlhf eval kl on ${data}${o.limit ? ` (first ${o.limit})` : ''}: ${o.samples} sampled repl${o.samples === 1 ? 'y' : 'ies'} per prompt from ${specs[0].name} (temperature ${o.temperature}; both models' logits divided by it), k1 estimator`, ...dataNotes];
  emitReport(createReport('rlhf eval kl', [{ name, metrics: { 'KL(policy || reference), nats per reply': kl } }], [], notes), o, io);
}

type Report = ReturnType<typeof createReport>;

/** Prints the Markdown table and writes --markdown / --json (with `details` when given) / --report. */
function emitReport(report: Report, o: EvalFlags, io: EvalIo, details?: unknown): void {
  const md = reportToMarkdown(report);
  io.out(md);
  if (o.markdown) writeFileSync(o.markdown, md);
  if (o.json) writeFileSync(o.json, reportToJson(details === undefined ? report : ({ ...report, details } as Report)));
  if (o.report) writeFileSync(o.report, reportToHtml(report));
}
