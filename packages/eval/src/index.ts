/**
 * @rlhf/eval: TruthfulQA, BBQ, RealToxicityPrompts, preference metrics (reward accuracy, win rate, KL,
 * over-optimisation) and reports (JSON, Markdown, self-contained HTML with SVG charts).
 */
export const EVAL_PACKAGE = '@rlhf/eval';

export * from './stats';
export { EvalDataError } from './errors';
export { parseCsv } from './csv';
export type { CsvRow } from './csv';
export { scoreContinuations } from './loglik';
export type { ContinuationScores, ScoreOptions } from './loglik';
export { sentenceBleu, tokenize13a } from './metrics/bleu';
export type { BleuDetail } from './metrics/bleu';
export { rougeN, rougeL, lcsLength, tokenizeRouge } from './metrics/rouge';
export type { RougeScore } from './metrics/rouge';
export { encodeChoices } from './benchmarks/common';
export type { EvalModel, RunOptions, ComputeStats } from './benchmarks/common';
export * from './benchmarks/truthfulqa';
export * from './benchmarks/bbq';
export * from './benchmarks/toxicity';
export * from './benchmarks/toxicity-scorers';
export * from './benchmarks/reward-accuracy';
export * from './preference';
export * from './report';
