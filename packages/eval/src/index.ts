/**
 * @rlhf/eval: TruthfulQA, BBQ, RealToxicityPrompts, preference metrics and reports.
 */
export const EVAL_PACKAGE = '@rlhf/eval';
