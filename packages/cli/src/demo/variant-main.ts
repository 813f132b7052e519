/**
 * A variant of the demo's recipe on one seed: stages 2-4 (or 3-4) rerun with other settings from a finished
 * `rlhf demo` run's base and SFT models (and its reward model for stages 3-4), so that variants of a stage share
 * everything before it; with `grpo` in STAGES, GRPO too (stage 3b, from the same SFT model and reward model). How packages/cli/docs/demo-seeds.md measured what each setting changes.
 *
 *   npm run build   (dist/demo-variant.js)
 *   node packages/cli/dist/demo-variant.js FROM OUT SEED STAGES [SIZES_JSON] [PPO_CONFIG_JSON]
 *
 * FROM: one seed's output folder of `rlhf demo` (models/base, models/sft, models/rm); SEED: the seed FROM was run
 * with; STAGES: `rm,ppo` (a reward model of its own, then PPO) or `ppo` (PPO against FROM's reward model), either
 * followed by `,grpo`;
 * SIZES_JSON: DemoSizes fields over the full run's (e.g. '{"rmPrompts":2000}'); PPO_CONFIG_JSON: PpoConfig fields
 * over the recipe's (e.g. '{"valueHeadInit":"given"}'). Prints the stages' lines and writes OUT/variant.json
 * (the settings, the figures, the over-optimisation curve, the stage times).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fromPretrained, loadRewardModel, silentProgress, type CausalLM, type GPT2, type PpoConfig, type Tokenizer } from '@rlhf/core';
import { evaluateModels, optimiseGrpo, optimisePpo, startRun, trainRewardModel } from './run-demo';
import type { DemoSizes } from './sizes';

function fail(message: string): never {
  process.stderr.write(`demo-variant: ${message}\n`);
  process.exit(1);
}

function parseJson<T>(text: string | undefined, what: string): Partial<T> {
  if (text === undefined) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} must be a JSON object, got ${text}`);
    return v as Partial<T>;
  } catch (e) {
    return fail(`${what} is not JSON (${(e as Error).message}): ${text}`);
  }
}

async function main(argv: string[]): Promise<void> {
  const [fromArg, outArg, seedArg, stages, sizesJson, ppoJson] = argv;
  if (!stages) fail('usage: demo-variant FROM OUT SEED rm,ppo|ppo|rm,ppo,grpo|ppo,grpo [SIZES_JSON] [PPO_CONFIG_JSON]');
  if (!['rm,ppo', 'ppo', 'rm,ppo,grpo', 'ppo,grpo'].includes(stages)) fail(`STAGES must be rm,ppo, ppo, rm,ppo,grpo or ppo,grpo, got ${stages}`);
  const withRm = stages.startsWith('rm,');
  const withGrpo = stages.endsWith(',grpo');
  const from = resolve(fromArg);
  for (const m of withRm ? ['base', 'sft'] : ['base', 'sft', 'rm']) {
    if (!existsSync(join(from, 'models', m))) fail(`${from} has no models/${m}: FROM must be a seed's output folder of rlhf demo`);
  }
  const seed = Number(seedArg);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) fail(`SEED must be an integer in [0, 4294967295], got ${seedArg}`);
  const sizes = parseJson<DemoSizes>(sizesJson, 'SIZES_JSON');
  const ppoConfig = parseJson<PpoConfig>(ppoJson, 'PPO_CONFIG_JSON');
  const out = resolve(outArg);
  if (out === from) fail('OUT must be another folder than FROM (the variant rewrites data/, models/ and runs/)');

  const print = (l: string) => process.stdout.write(`${l}\n`);
  const run = startRun({ out, seed, quick: false, progress: () => silentProgress, print, sizes });
  const sftLoaded = fromPretrained(join(from, 'models', 'sft'));
  const tokenizer = sftLoaded.tokenizer as Tokenizer;
  const sft = sftLoaded.model as GPT2;
  const base = fromPretrained(join(from, 'models', 'base')).model as CausalLM;
  let rmAccuracy: number | null = null;
  let reward;
  if (withRm) {
    const r = await trainRewardModel(run, tokenizer, sft);
    reward = { model: r.rm, normalization: r.normalization };
    rmAccuracy = r.rmAccuracy;
  } else {
    const r = loadRewardModel(join(from, 'models', 'rm'));
    if (!r.normalization) fail(`${from}/models/rm has no reward-normalization.json`);
    reward = { model: r.model, normalization: r.normalization };
  }
  const trainer = await optimisePpo(run, tokenizer, sft, reward, ppoConfig);
  const grpo = withGrpo ? await optimiseGrpo(run, tokenizer, sft, reward) : undefined;
  const e = await evaluateModels(run, tokenizer, { base, sft, ppo: trainer, grpo }, reward);
  const figures = {
    from, seed, stages, sizes, ppoConfig, rmAccuracy,
    winPpoOverSft: e.winPpoOverSft.value, goldSft: e.sft.gold.value, goldPpo: e.ppo.gold.value, klPpo: e.ppoKl.value,
    curve: trainer.curve,
    ...(e.grpo && grpo
      ? { winGrpoOverSft: e.grpo.winOverSft.value, winGrpoOverPpo: e.grpo.winOverPpo.value, goldGrpo: e.grpo.eval.gold.value, klGrpo: e.grpo.kl.value, grpoCurve: grpo.curve }
      : {}),
    times: run.times,
  };
  writeFileSync(join(out, 'variant.json'), `${JSON.stringify(figures, null, 2)}\n`);
}

main(process.argv.slice(2)).catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
