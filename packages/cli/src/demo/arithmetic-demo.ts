/**
 * `rlhf demo --task arithmetic`: GRPO with a verifiable reward on the arithmetic word problems of arithmetic.ts.
 * Stages (the support demo's first two, on this task's data):
 *
 *   0. base       BPE tokenizer and a small GPT-2 pretrained on a web corpus of problems with answers right half
 *                 of the time
 *   1. sft        contractor demonstrations with the contractors' systematic slips (a subtraction added more
 *                 often than not, an addition one off)
 *   2. grpo       GRPO of the SFT policy with core's exact-match reward (answerMatch against the `answer`
 *                 column of each prompt record); held-out accuracy along the way
 *   3. eval       held-out accuracy of SFT and GRPO: one sampled answer per problem at the demo's temperature
 *                 (the same sampling seed for both), and the greedy answer
 *
 * The sampled accuracy is the headline (the policy as RL sees it and as the support demo evaluates); the greedy
 * one shows that the gain is not only a sharper distribution: SFT's likeliest answer to a subtraction is the
 * contractors' wrong one, and only learning from the reward turns it around.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GrpoTrainer, answerMatch, encodePrompt, grpoConfig, saveModelDir, toPromptExamples, type CausalLM, type GPT2, type GrpoConfig, type Tokenizer } from '@rlhf/core';
import { createReport, exact, formatEstimate, proportion, reportToHtml, reportToJson, reportToMarkdown, type Estimate, type ResultSet } from '@rlhf/eval';
import { aggregateResults, seedsReport, writeSeedsReport, type MultiSeedSummary } from './multi-seed';
import { answered, contractorAnswer, splitProblems, webAnswer, type Problem } from './arithmetic';
import { finetuneSft, lastStageTime, pct, pretrainBase, readRecords, sampleReplies, startRun, streamRng, timed, writeConfig, writeJsonl, type DemoOptions, type StageTime } from './run-demo';
import { FULL_SIZES, QUICK_SIZES, type DemoSizes } from './sizes';

/**
 * The task's sizes: the support demo's knobs, set for prompts of about 22 tokens and answers of one token (BPE
 * vocabulary 512: every number up to 18 is one token). Measured on 2 cores (seed 1-3): the full run about 2 minutes
 * of CPU, --quick about half a minute; the 2 x 64 model of the support demo's --quick did not learn the table.
 */
export const ARITHMETIC_SIZES: Partial<DemoSizes> = {
  evalPrompts: 256,
  rmEvalPrompts: 0,
  curvePrompts: 64,
  webDocs: 4000,
  vocabSize: 512,
  nLayer: 3,
  nEmbd: 128,
  nHead: 4,
  nPositions: 48,
  pretrainEpochs: 1,
  pretrainLr: 3e-3,
  demos: 10000,
  sftEpochs: 3,
  sftLr: 2e-3,
  grpoEpisodes: 16384,
  grpoGenerations: 8,
  grpoLr: 3e-4,
  grpoBeta: 0.02,
  grpoEvalEvery: 16,
  responseLength: 4,
};

export const ARITHMETIC_QUICK_SIZES: Partial<DemoSizes> = {
  ...ARITHMETIC_SIZES,
  nLayer: 2,
  webDocs: 2000,
  demos: 5000,
  grpoEpisodes: 4096,
  grpoLr: 5e-4,
  grpoEvalEvery: 8,
};

/** Held-out accuracy of one decoding of a model: over all problems and by operation. */
export interface Accuracy {
  all: Estimate;
  additions: Estimate;
  subtractions: Estimate;
}

export interface ArithmeticSummary {
  task: 'arithmetic';
  seed: number;
  quick: boolean;
  sizes: DemoSizes;
  evalProblems: number;
  pretrainLoss: number;
  sftEvalLoss: number;
  /** share of the contractor demonstrations that are right */
  demoAccuracy: number;
  /** held-out accuracy of one answer sampled at sizes.temperature (seed fixed) and of the greedy answer */
  sft: { sampled: Accuracy; greedy: Accuracy };
  grpo: { sampled: Accuracy; greedy: Accuracy };
  /** GRPO's accuracy minus SFT's, in points */
  gainPoints: { sampled: number; greedy: number };
  /** sampled held-out accuracy along GRPO (the first curvePrompts problems) */
  curve: Array<{ step: number; accuracy: number }>;
  times: StageTime[];
}

const asPrompt = (p: Problem) => ({ kind: 'prompt', prompt: p.text, meta: { answer: String(p.answer) } });

/** GRPO that keeps the held-out accuracy of each evaluation (its reward is exact match: the mean is the accuracy). */
class ArithmeticGrpoTrainer extends GrpoTrainer {
  readonly curve: Array<{ step: number; accuracy: number }> = [];
  override evaluate(): Record<string, number> {
    const m = super.evaluate();
    this.curve.push({ step: this.step, accuracy: m.reward });
    return m;
  }
}

/**
 * Held-out accuracy of `model`: one answer per problem (greedy at temperature 0, else sampled with `seed`), scored
 * by the training reward (answerMatch on the problem's answer), over all problems and by operation.
 */
export function heldOutAccuracy(model: CausalLM, tokenizer: Tokenizer, problems: Problem[], sizes: DemoSizes, opts: { temperature: number; seed: number }): Accuracy {
  const eos = tokenizer.eosId!;
  const prompts = problems.map((p) => encodePrompt(tokenizer, p.text));
  const completionIds = sampleReplies(model, prompts, { ...sizes, temperature: opts.temperature }, eos, opts.seed);
  const completions = completionIds.map((t) => tokenizer.decode(t[t.length - 1] === eos ? t.slice(0, -1) : t, { skipSpecialTokens: true }));
  const right = answerMatch({ column: 'answer' })({
    promptIds: prompts, completionIds, prompts: problems.map((p) => p.text), completions,
    rows: problems.map((p) => ({ answer: String(p.answer) })), stopped: completionIds.map((t) => t[t.length - 1] === eos), promptIndex: problems.map((_, i) => i),
  }) as ArrayLike<number | null>;
  const share = (op?: Problem['op']) => {
    const idx = problems.map((p, i) => (op === undefined || p.op === op ? i : -1)).filter((i) => i >= 0);
    return proportion(idx.filter((i) => right[i] === 1).length, idx.length);
  };
  return { all: share(), additions: share('+'), subtractions: share('-') };
}

/** Runs the four stages; writes everything under opts.out; returns the figures. */
export async function runArithmeticDemo(opts: DemoOptions): Promise<ArithmeticSummary> {
  const sizes: DemoSizes = { ...(opts.quick ? QUICK_SIZES : FULL_SIZES), ...(opts.quick ? ARITHMETIC_QUICK_SIZES : ARITHMETIC_SIZES), ...opts.sizes };
  const run = startRun({ ...opts, sizes });
  const { seed } = run;
  const p = run.path;
  const split = splitProblems(streamRng(seed, 10), sizes.evalPrompts);

  const webRng = streamRng(seed, 11);
  const web = split.drawTrain(webRng, sizes.webDocs).map((pr) => answered(pr, webAnswer(webRng, pr)));
  const { tokenizer, base, pretrainLoss } = await pretrainBase(run, web);

  const demoRng = streamRng(seed, 12);
  const demoProblems = split.drawTrain(demoRng, sizes.demos);
  const demoAnswers = demoProblems.map((pr) => contractorAnswer(demoRng, pr));
  const demoAccuracy = demoProblems.filter((pr, i) => demoAnswers[i] === pr.answer).length / demoProblems.length;
  const evalDemos = split.drawTrain(demoRng, 200).map((pr) => answered(pr, contractorAnswer(demoRng, pr)));
  const { sft, sftEvalLoss } = await finetuneSft(run, tokenizer, base, { train: demoProblems.map((pr, i) => answered(pr, demoAnswers[i])), eval: evalDemos });

  const trainer = await timed(run, 'grpo', async () => {
    const grpoRng = streamRng(seed, 13);
    writeJsonl(p('data', 'prompts.jsonl'), split.drawTrain(grpoRng, Math.ceil(sizes.grpoEpisodes / sizes.grpoGenerations)).map(asPrompt));
    writeJsonl(p('data', 'held-out.jsonl'), split.held.map(asPrompt)); // the final evaluation's problems
    writeJsonl(p('data', 'prompts-eval.jsonl'), split.held.slice(0, sizes.curvePrompts).map(asPrompt)); // the curve's
    // generations of 128 answers (16 problems, G = 8), each used once in 2 steps of 64: on-policy, no clipping at
    // work (with 32 a step, 2 passes and a learning rate of 5e-4, seed 1's held-out accuracy swung between 34% and
    // 75% along the run and ended no better than SFT's)
    const config: Partial<GrpoConfig> = {
      modelPath: 'models/sft', datasetPath: 'data/prompts.jsonl', evalDatasetPath: 'data/prompts-eval.jsonl', outputDir: 'runs/grpo', seed,
      learningRate: sizes.grpoLr, numGenerations: sizes.grpoGenerations, maxCompletionLength: sizes.responseLength, temperature: sizes.temperature,
      beta: sizes.grpoBeta, perDeviceTrainBatchSize: 64, stepsPerGeneration: 2, numIterations: 1, numTrainEpochs: 1,
      perDeviceEvalBatchSize: 64, evalSteps: sizes.grpoEvalEvery, loggingSteps: 1, lrSchedulerType: 'constant',
    };
    writeConfig(run, 'grpo', { ...grpoConfig(config), rewardFuncs: [{ builtin: 'answerMatch', options: { column: 'answer' } }] });
    const prompts = toPromptExamples(tokenizer, await readRecords(p('data', 'prompts.jsonl')));
    const curve = toPromptExamples(tokenizer, await readRecords(p('data', 'prompts-eval.jsonl')));
    const policyLm = sft.clone() as GPT2;
    const t = new ArithmeticGrpoTrainer(policyLm, prompts, [answerMatch({ column: 'answer' })], {
      config: { ...config, device: run.device, outputDir: p('runs', 'grpo') },
      evalPrompts: curve,
      eosTokenId: tokenizer.eosId!,
      tokenizer,
      progress: run.progress(),
    });
    run.stageTiming = t.timing;
    t.evaluate(); // step 0: the SFT policy itself
    t.train();
    saveModelDir(p('models', 'grpo'), policyLm.hfConfig(), policyLm.stateDict(), { tokenizerFrom: p('tokenizer') });
    return t;
  });
  const c0 = trainer.curve[0];
  const cN = trainer.curve[trainer.curve.length - 1];
  run.print(
    `2 grpo   ${sizes.grpoEpisodes} episodes (G=${sizes.grpoGenerations}), exact-match reward; sampled accuracy on ${sizes.curvePrompts} held-out problems ` +
      `${pct(c0.accuracy)} -> ${pct(cN.accuracy)} (${lastStageTime(run)})`,
  );

  // same seed for SFT and GRPO: the gain is the policy's, not the draw's
  const evalSeed = seed * 1000 + 99;
  const both = (model: CausalLM) => ({
    sampled: heldOutAccuracy(model, tokenizer, split.held, sizes, { temperature: sizes.temperature, seed: evalSeed }),
    greedy: heldOutAccuracy(model, tokenizer, split.held, sizes, { temperature: 0, seed: evalSeed }),
  });
  const accuracies = await timed(run, 'eval', () => ({ sft: both(sft), grpo: both(trainer.policy) }), true);
  const gainPoints = {
    sampled: 100 * (accuracies.grpo.sampled.all.value - accuracies.sft.sampled.all.value),
    greedy: 100 * (accuracies.grpo.greedy.all.value - accuracies.sft.greedy.all.value),
  };
  run.print(
    `3 eval   ${split.held.length} held-out problems; accuracy sampled at T=${sizes.temperature}: SFT ${pct(accuracies.sft.sampled.all.value)} -> GRPO ${pct(accuracies.grpo.sampled.all.value)} (${signed(gainPoints.sampled)} points), ` +
      `greedy: SFT ${pct(accuracies.sft.greedy.all.value)} -> GRPO ${pct(accuracies.grpo.greedy.all.value)} (${signed(gainPoints.greedy)} points); contractor demonstrations right on ${pct(demoAccuracy)} (${lastStageTime(run)})`,
  );
  return {
    task: 'arithmetic', seed, quick: opts.quick, sizes, evalProblems: split.held.length, pretrainLoss, sftEvalLoss, demoAccuracy,
    sft: accuracies.sft, grpo: accuracies.grpo, gainPoints, curve: trainer.curve, times: run.times,
  };
}

const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
const totals = (s: ArithmeticSummary) => ({ wall: s.times.reduce((a, t) => a + t.wallS, 0), cpu: s.times.reduce((a, t) => a + t.cpuS, 0) });

/** The run's figures as @rlhf/eval result sets (the report's and the report over seeds'). */
export function arithmeticResults(s: ArithmeticSummary): ResultSet[] {
  const { wall, cpu } = totals(s);
  const figures = (m: { sampled: Accuracy; greedy: Accuracy }) => ({
    'held-out accuracy, sampled': m.sampled.all,
    'held-out accuracy, greedy': m.greedy.all,
    'subtractions, sampled': m.sampled.subtractions,
    'additions, sampled': m.sampled.additions,
  });
  return [
    { name: 'SFT', metrics: figures(s.sft) },
    { name: 'GRPO', metrics: { ...figures(s.grpo), 'gain over SFT, sampled (points)': exact(s.gainPoints.sampled, s.evalProblems), 'gain over SFT, greedy (points)': exact(s.gainPoints.greedy, s.evalProblems) } },
    { name: 'run', metrics: { 'wall time, all stages (s)': exact(wall), 'CPU time, all stages (s)': exact(cpu) } },
  ];
}

/** The terminal summary of one run. */
export function arithmeticTable(s: ArithmeticSummary): string {
  const { wall, cpu } = totals(s);
  const line = (name: string, m: { sampled: Accuracy; greedy: Accuracy }) =>
    `  ${name.padEnd(5)} sampled ${formatEstimate(m.sampled.all)} (additions ${pct(m.sampled.additions.value)}, subtractions ${pct(m.sampled.subtractions.value)}); greedy ${formatEstimate(m.greedy.all)}`;
  return [
    `Summary (arithmetic, seed ${s.seed}${s.quick ? ', --quick' : ''}; held-out accuracy on ${s.evalProblems} problems, one answer sampled at T=${s.sizes.temperature} and the greedy one)`,
    line('SFT', s.sft),
    line('GRPO', s.grpo),
    `  GRPO over SFT: ${signed(s.gainPoints.sampled)} points sampled, ${signed(s.gainPoints.greedy)} points greedy`,
    `  along GRPO (sampled, first ${s.sizes.curvePrompts} held-out problems): ${s.curve.map((c) => `step ${c.step} ${pct(c.accuracy)}`).join(', ')}`,
    `  time: ${wall.toFixed(0)} s wall, ${cpu.toFixed(0)} s CPU`,
  ].join('\n');
}

/** Writes report.json (the eval report and the summary), report.md and report.html into `out`. */
export function writeArithmeticReports(out: string, s: ArithmeticSummary, command: string): void {
  const series = [{ name: 'held-out accuracy along GRPO', xLabel: 'step', yLabel: 'accuracy', lines: [{ name: 'GRPO', points: s.curve.map((c) => ({ x: c.step, y: c.accuracy })) }] }];
  const { wall, cpu } = totals(s);
  const notes = [
    `command: ${command}`,
    'task: arithmetic word problems (a + b, a - b, one-digit operands); reward: exact match of the last number of the answer (answerMatch)',
    `demonstrations: contractors right on ${pct(s.demoAccuracy)} (subtractions added more often than not, additions sometimes one off)`,
    `accuracy: one answer per held-out problem (${s.evalProblems}, never in any training data), sampled at temperature ${s.sizes.temperature} with the same seed for SFT and GRPO, and the greedy answer`,
    `time: ${wall.toFixed(0)} s wall, ${cpu.toFixed(0)} s CPU (${s.times.map((t) => `${t.stage} ${t.wallS.toFixed(0)}/${t.cpuS.toFixed(0)} s`).join(', ')})`,
  ];
  const report = createReport(`rlhf demo --task arithmetic (seed ${s.seed}${s.quick ? ', --quick' : ''})`, arithmeticResults(s), series, notes);
  writeFileSync(join(out, 'report.json'), `${JSON.stringify({ report: JSON.parse(reportToJson(report)), summary: s }, null, 2)}\n`);
  writeFileSync(join(out, 'report.md'), reportToMarkdown(report));
  writeFileSync(join(out, 'report.html'), reportToHtml(report));
}

/** The report over seeds (report.json, .md, .html in `out`): every figure per seed, mean, worst, spread; each seed's curve. */
export function writeArithmeticSeedsReport(out: string, runs: ArithmeticSummary[], command: string): MultiSeedSummary {
  const seeds = runs.map((s) => s.seed);
  const perRun = runs.map(arithmeticResults);
  const m = aggregateResults(seeds, runs[0].quick, perRun);
  const curve = {
    name: `sampled accuracy along GRPO, per seed (first ${runs[0].sizes.curvePrompts} held-out problems)`,
    xLabel: 'step',
    yLabel: 'accuracy',
    lines: runs.map((s) => ({ name: `seed ${s.seed}`, points: s.curve.map((c) => ({ x: c.step, y: c.accuracy })) })),
  };
  writeSeedsReport(out, m, seedsReport(m, perRun, [curve], `rlhf demo --task arithmetic over ${runs.length} seeds${m.quick ? ' (--quick)' : ''}`, command));
  return m;
}
