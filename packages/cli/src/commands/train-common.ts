/**
 * What `rlhf sft | rm | ppo | dpo | grpo | rloo` share: one flag per config field (generated from the config's spec, so
 * `--learning-rate 1e-5` overrides `"learningRate"` of `--config FILE.json`), `--out` and `--resume`, a config
 * that reports every problem at once by field name, the progress display (a bar on a TTY, plain lines
 * otherwise), loading the starting model, its tokenizer and the data records, and Ctrl-C: the first SIGINT or
 * SIGTERM stops the run gracefully at a checkpoint (exit code 130, with the command that resumes it), a
 * second one ends the process at once.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import {
  backendFor,
  DEVICES,
  type Device,
  ConfigError,
  LineProgress,
  checkOutputDir,
  flagName,
  formatMetric,
  fromPretrained,
  loadTokenizer,
  resolveChatTemplate,
  withChatTemplate,
  parseFieldValue,
  resolveResume,
  withDefaults,
  type ConfigProblem,
  type ConfigSpec,
  type FieldSpec,
  type LoadedCheckpoint,
  type ProgressReporter,
  type Tokenizer,
  type TrainResult,
  type TrainingArgs,
} from '@rlhf/core';
import { formatIssue, openRecords, type DataRecord, type SourcedRecord } from '@rlhf/data';
import { mpi } from '@rlhf/native';

/** Options every training command has besides the config fields. */
export interface CommonFlags {
  config?: string;
  out?: string;
  resume?: string;
  tokenizer?: string;
  chatTemplate?: string;
}

/** --chat-template's help, shared by the commands that render chat records. */
export const CHAT_TEMPLATE_HELP =
  "chat template for conversational records (message lists), for a tokenizer that has none or to replace its own: hh (HH-RLHF's \\n\\nHuman: / \\n\\nAssistant: layout), rlhf (this SDK's <|user|> format), a .jinja file, or a tokenizer_config.json / chat_template.json / folder holding one";

/** The option key commander gives `--<field>-<sub>` (`lora` + `targetModules` -> `loraTargetModules`). */
function subKey(field: string, sub: string): string {
  return field + sub[0].toUpperCase() + sub.slice(1);
}

/**
 * A --device flag's value, checked: one of core's devices whose backend loads here (else an error naming the flag
 * with the backend's reason: no rlhf_cuda.node, no GPU).
 */
export function parseDevice(name: string, flag = '--device'): Device {
  if (!(DEVICES as readonly string[]).includes(name)) throw new Error(`${flag} must be one of ${DEVICES.join(', ')}, got ${JSON.stringify(name)}`);
  const device = name as Device;
  if (device !== 'cpu') {
    try {
      backendFor(device);
    } catch (e) {
      throw new Error(`${flag} ${device}: ${(e as Error).message}`);
    }
  }
  return device;
}

/**
 * Adds --config, --out, --resume, --tokenizer and one --<field> flag per config field (help: group, doc, default);
 * a group of fields (`lora`) gets one --<field>-<sub> flag per field of the group as well (`--lora-r 16`).
 */
export function addTrainingOptions<T>(cmd: Command, spec: ConfigSpec<T>): Command {
  cmd
    .option('--config <file>', 'JSON file of config fields (flags override it)')
    .option('--out <dir>', 'output folder (the outputDir field; default runs/<command>); new or empty unless --resume or --overwrite-output-dir true')
    .option('--resume <dir>', 'continue from a checkpoint folder, or the newest loadable checkpoint under a folder')
    .option('--tokenizer <path>', "tokenizer file or folder (default: the one beside the model)")
    .option('--chat-template <name|file>', `${CHAT_TEMPLATE_HELP}; the trained model is saved with it`);
  for (const [field, s] of Object.entries(spec) as [string, FieldSpec][]) {
    const def = s.default === null ? 'null' : JSON.stringify(s.default);
    if (s.type !== 'object') {
      cmd.option(`--${flagName(field)} <value>`, `[${s.group}] ${s.doc} (default: ${def})`);
      continue;
    }
    cmd.option(`--${flagName(field)} <value>`, `[${s.group}] ${s.doc}; true: on with every default, or a JSON object (default: ${def}; any --${flagName(field)}-* flag turns it on)`);
    for (const [sub, ss] of Object.entries(s.fields ?? {})) {
      const sdef = ss.default === null ? 'null' : JSON.stringify(ss.default);
      cmd.option(`--${flagName(field)}-${flagName(sub)} <value>`, `[${ss.group}] ${ss.doc} (default: ${sdef})`);
    }
  }
  return cmd;
}

/**
 * The config from --config and the flags, validated as a whole: a ConfigError lists every problem of the
 * file and the flags together, each by field name.
 */
export function configFromCli<T extends TrainingArgs>(
  name: string,
  spec: ConfigSpec<T>,
  validate: (input: unknown) => ConfigProblem[],
  opts: Record<string, unknown> & CommonFlags,
  /** fields the command cannot run without (null by default in the library, where data come in code) */
  required: readonly string[] = ['modelPath', 'datasetPath'],
): T {
  return configAndExtrasFromCli(name, spec, validate, opts, required, {}).config;
}

/**
 * configFromCli for a command whose config file also holds fields outside the trainer's spec (`rlhf grpo`'s
 * rewardFuncs): each is taken out before the spec's validation and checked by its own function, whose
 * problems join the same ConfigError. Returns the config and the extra fields' values (undefined when absent).
 */
export function configAndExtrasFromCli<T extends TrainingArgs>(
  name: string,
  spec: ConfigSpec<T>,
  validate: (input: unknown) => ConfigProblem[],
  opts: Record<string, unknown> & CommonFlags,
  required: readonly string[],
  extras: Record<string, (value: unknown) => ConfigProblem[]>,
): { config: T; extras: Record<string, unknown> } {
  let fromFile: Record<string, unknown> = {};
  if (opts.config) {
    let text: string;
    try {
      text = readFileSync(opts.config, 'utf8');
    } catch (e) {
      throw new Error(`--config ${opts.config}: ${(e as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`--config ${opts.config}: not valid JSON: ${(e as Error).message}`);
    }
  }
  const isObject = typeof fromFile === 'object' && fromFile !== null && !Array.isArray(fromFile);
  const merged: Record<string, unknown> = isObject ? { ...fromFile } : {};
  const problems: ConfigProblem[] = [];
  if (!isObject) problems.push({ field: '(config)', message: `${opts.config} must hold a JSON object` });
  const extraValues: Record<string, unknown> = {};
  for (const [field, check] of Object.entries(extras)) {
    if (!(field in merged)) continue;
    extraValues[field] = merged[field];
    delete merged[field];
    problems.push(...check(extraValues[field]));
  }
  for (const [field, s] of Object.entries(spec) as [string, FieldSpec][]) {
    const raw = opts[field];
    if (typeof raw === 'string') merged[field] = parseFieldValue(s, raw);
    if (s.type !== 'object') continue;
    // --lora-r 16 and the like: fields of the group, over what --config and --lora gave (turning the group on)
    for (const [sub, ss] of Object.entries(s.fields ?? {})) {
      const v = opts[subKey(field, sub)];
      if (typeof v !== 'string') continue;
      const group = merged[field];
      merged[field] = { ...(group !== null && typeof group === 'object' && !Array.isArray(group) ? group : {}), [sub]: parseFieldValue(ss, v) };
    }
  }
  if (opts.out) merged.outputDir = opts.out;
  // the library has no default folder (nothing lands in the current folder unasked); a command run in a
  // shell does: runs/<command>
  if (merged.outputDir === undefined || merged.outputDir === null) merged.outputDir = `runs/${name.split(' ')[0]}`;
  problems.push(...validate(merged));
  for (const field of required) {
    if (merged[field] === undefined || merged[field] === null) {
      problems.push({ field, message: `is required (--${flagName(field)} or "${field}" in --config)` });
    }
  }
  if (problems.length) throw new ConfigError(name, problems);
  const config = withDefaults(spec, merged);
  // before the model and the data are loaded: a folder of another run, or one that cannot be written
  checkOutputDir(config, opts.resume !== undefined, name);
  return { config, extras: extraValues };
}

/** A progress bar on a TTY (cli-progress), plain lines on stderr otherwise. */
export function progressReporter(): ProgressReporter {
  if (!process.stderr.isTTY) return new LineProgress((l) => process.stderr.write(`${l}\n`), 10);
  let bar: SingleBar | null = null;
  let label = '';
  return {
    start(l, total, startStep) {
      label = l;
      // The cursor stays visible: a second Ctrl-C ends the process mid-step, before any JS could show it again,
      // and a hidden cursor would outlive the run in the user's terminal.
      bar = new SingleBar({ format: `${l} [{bar}] {value}/{total} {metrics}`, stream: process.stderr, hideCursor: false }, Presets.shades_classic);
      bar.start(total, startStep, { metrics: '' });
    },
    update(step, metrics) {
      const keys = ['loss', 'objective/score', 'objective/kl', 'reward', 'kl', 'rewards/accuracy', 'accuracy', 'lr'];
      const shown = keys.filter((k) => k in metrics).map((k) => `${k.replace(/^.*\//, '')}=${formatMetric(metrics[k])}`);
      bar?.update(step, { metrics: shown.join(' ') });
    },
    log(message) {
      if (bar) {
        bar.stop();
        process.stderr.write(`[${label}] ${message}\n`);
        const b = bar as SingleBar & { value?: number; total?: number };
        bar.start(b.getTotal(), b.getProgress() * b.getTotal(), { metrics: '' });
      } else process.stderr.write(label ? `[${label}] ${message}\n` : `${message}\n`); // no label before start()
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

/**
 * The starting model and its tokenizer (--tokenizer, else the one beside the model), with --chat-template's template
 * when given, and the checkpoint to resume from (--resume). A PEFT adapter folder (an earlier stage trained with
 * --lora-*) is loaded onto its base and merged: the starting model is a plain one, on which this stage trains the
 * whole model or new adapters. `tokenizer` goes to the trainer (it writes it into each checkpoint); `tokenizerOut` is
 * what saveTrainedModel needs to save it with the trained model (its files, and the chat template in force).
 *
 * A resumed run renders chat records as the run did: the template its checkpoint carries is used when
 * --chat-template is not given, and another one given is refused.
 */
export function loadStartingModel(modelPath: string | null, flags: Pick<CommonFlags, 'tokenizer' | 'chatTemplate' | 'resume'>, field = 'modelPath') {
  if (!modelPath) throw new ConfigError('config', [{ field, message: 'is required: the starting model folder (config.json + model.safetensors) or llama2.c .bin' }]);
  const tokenizerPath = flags.tokenizer;
  // the template first: a bad --chat-template is refused before the model is read
  let chatTemplate = flags.chatTemplate === undefined ? undefined : resolveChatTemplate(flags.chatTemplate, '--chat-template');
  const resume = resumeFrom(flags);
  const resumedTemplate = resume ? tryLoadTokenizer(resume.path)?.chatTemplate : undefined;
  if (resume && chatTemplate !== undefined && resumedTemplate !== undefined && chatTemplate !== resumedTemplate) {
    throw new Error(`--chat-template ${flags.chatTemplate}: the run resumed from ${resume.path} rendered its chat records with another template (the one its checkpoint carries); leave --chat-template out to go on with that one`);
  }
  const pre = fromPretrained(modelPath, { mergeAdapter: true, ...(tokenizerPath ? { tokenizer: loadTokenizer(tokenizerPath) } : {}) });
  let tokenizer: Tokenizer | undefined = pre.tokenizer ?? (tokenizerPath ? loadTokenizer(tokenizerPath) : tryLoadTokenizer(modelPath));
  if (!tokenizer) throw new Error(`${modelPath}: no tokenizer found beside the model; pass --tokenizer`);
  if (chatTemplate === undefined && resumedTemplate !== undefined && resumedTemplate !== tokenizer.chatTemplate) chatTemplate = resumedTemplate;
  if (chatTemplate !== undefined) tokenizer = withChatTemplate(tokenizer, chatTemplate);
  // where the tokenizer files to carry into the output live: beside a llama2.c .bin, or in the model folder
  const tokenizerSource = tokenizerPath ?? modelPath;
  const tokenizerFrom = statSync(tokenizerSource).isDirectory() ? tokenizerSource : dirname(tokenizerSource);
  return { model: pre.model, tokenizer, stopTokens: pre.stopTokens, tokenizerOut: { tokenizerFrom, chatTemplate }, resume };
}

/**
 * When the model folder at `path` holds a tokenizer, it must encode like the policy's: a reward model or
 * reference over another tokenizer would read the policy's ids as other text (vocabularies of the same size
 * included). A folder without a tokenizer is not checked here (the trainer compares vocabulary sizes).
 */
export function sameTokenizer(policyTokenizer: Tokenizer, path: string, field: string): void {
  const other = tryLoadTokenizer(path);
  if (!other) return;
  const probe = 'Human: How do I bake bread at home? Assistant: Mix 500 g of flour, 10 g of salt and yeast.';
  const a = policyTokenizer.encode(probe), b = other.encode(probe);
  if (other.vocabSize !== policyTokenizer.vocabSize || a.length !== b.length || a.some((t, i) => t !== b[i])) {
    throw new Error(`${field} ${path}: its tokenizer (${other.vocabSize} tokens) does not encode like the policy's (${policyTokenizer.vocabSize} tokens); the models must share one tokenizer`);
  }
}

function tryLoadTokenizer(path: string): Tokenizer | undefined {
  try {
    return loadTokenizer(path);
  } catch {
    return undefined;
  }
}

/** Issues shown on stderr when records of a training file are dropped (all are listed by `rlhf data validate`). */
const SHOWN_ISSUES = 5;

/**
 * The training examples of a data file (JSONL, JSON or Parquet, any supported layout), made by `toExamples`
 * one record at a time, so that a record the trainer cannot use is named by its file and line. Records the
 * reader drops (bad JSON, a missing field, ...) are counted and the first few listed on stderr, and training
 * goes on with the rest, as `rlhf data convert` would write them; a file that is damaged as a whole (a
 * truncated gzip stream, a broken JSON array) or that leaves no record is an error.
 */
export async function loadExamples<E>(path: string | null, field: string, toExamples: (records: DataRecord[]) => E[]): Promise<E[]> {
  if (!path) throw new ConfigError('config', [{ field, message: 'is required: a data file' }]);
  const { report, records } = await openRecords(path);
  const kept: SourcedRecord[] = [];
  for await (const r of records) kept.push(r);
  const fileProblem = report.fileIssues.find((i) => i.code !== 'empty-file');
  if (fileProblem) throw new Error(`${field}: ${formatIssue(fileProblem)} (a damaged file is not trained on; \`rlhf data validate ${path}\` lists what can be read)`);
  const empty = report.fileIssues.find((i) => i.code === 'empty-file');
  if (empty) throw new Error(`${field}: ${formatIssue(empty)}`);
  if (report.dropped > 0 || kept.length === 0) {
    const errors = report.issues.filter((i) => i.severity === 'error');
    const lines = [`${field}: ${report.summaryText()}`, ...errors.slice(0, SHOWN_ISSUES).map(formatIssue)];
    if (errors.length > SHOWN_ISSUES || report.dropped > SHOWN_ISSUES) lines.push(`(\`rlhf data validate ${path}\` lists every problem)`);
    if (kept.length === 0) throw new Error(`${path}: no usable record\n${lines.join('\n')}`);
    // under mpirun every rank reads the file: rank 0 says it once
    if ((mpi.launcherWorld()?.rank ?? 0) === 0) process.stderr.write(`${lines.join('\n')}\ntraining on the ${kept.length} records kept\n`);
  }
  const copies = report.warnedBy.get('duplicate-record') ?? 0;
  if (copies > 0) {
    // kept, as the SDK's converters keep the records they are given: say so, since each copy counts twice
    process.stderr.write(`${field}: ${path} has ${copies} exact duplicate record${copies === 1 ? '' : 's'}, kept (each copy counts again; \`rlhf data convert ${path} --dedupe record -o OUT\` removes them)\n`);
  }
  const out: E[] = [];
  for (const s of kept) {
    let ex: E[];
    try {
      ex = toExamples([s.record]);
    } catch (e) {
      // The trainer's converters number records from 0; the file's line (or row) is what the user can find.
      const msg = (e as Error).message.replace(/^record \d+(?: \([^)]*\))?: /, '');
      throw new Error(`${path}${s.line !== undefined ? `:${s.line}` : ` row ${s.row}`}: ${msg}`);
    }
    for (const x of ex) out.push(x);
  }
  return out;
}

/** The checkpoint to resume from, when --resume is given. */
export function resumeFrom(opts: CommonFlags): LoadedCheckpoint | undefined {
  return opts.resume ? resolveResume(opts.resume) : undefined;
}

/** The run's closing line on stdout: JSON with the output folder, steps and last evaluation. */
export function printSummary(summary: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

/** What trainWithSignals needs of a trainer (every TrainerBase has it). */
export interface StoppableTrainer {
  trainAsync(): Promise<TrainResult>;
  requestStop(reason?: string): number;
  totalSteps(): number;
}

/**
 * Refuses to run `command` on more than one rank: it is not data-parallel (evaluation, generation, labeling,
 * the demo, data tools), and N copies of it would each do the whole work and write the same files.
 */
export function singleProcessOnly(command: string): void {
  const w = mpi.launcherWorld();
  if (w && w.size > 1) {
    throw new Error(`rlhf ${command} runs in one process; it was started as rank ${w.rank} of ${w.size} by an MPI launcher. Run it without mpirun (or with -n 1): only sft, rm, ppo, dpo, grpo and rloo are data-parallel`);
  }
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Runs the trainer (trainAsync: the event loop gets a turn after every step) with SIGINT and SIGTERM
 * handlers installed for the duration of the run. The first signal asks for a graceful stop: the step in
 * progress finishes (PPO: the rollout in progress), a checkpoint is written and the result says
 * `interrupted`. The handlers are removed at that first signal, so a second one gets the default action and
 * ends the process at once, even in the middle of a long step (a JS handler could only run between steps);
 * a shell reports exit status 130 for a second Ctrl-C. Checkpoints are written atomically, so that never
 * leaves a broken one. The handlers are removed when the run ends in any case.
 */
export async function trainWithSignals(trainer: StoppableTrainer, progress: ProgressReporter): Promise<TrainResult> {
  const remove = () => {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    remove();
    const at = trainer.requestStop(signal);
    const again = signal === 'SIGINT' ? 'Ctrl-C again' : 'another signal';
    progress.log(at < trainer.totalSteps()
      ? `${signal}: stopping after step ${at}; writing a checkpoint (${again} to quit at once)`
      : `${signal}: the run ends after step ${at} anyway; finishing it (${again} to quit at once)`);
  }
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    return await trainer.trainAsync();
  } finally {
    remove();
  }
}

/** A word for a POSIX shell: as is when safe, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command that continues a run from `checkpoint`: the same stage with the same --config and flags
 * (so the same config: the resumed run reaches the weights of a run that never stopped), --resume replaced.
 */
export function resumeCommand(stage: string, opts: Record<string, unknown> & CommonFlags, checkpoint: string): string {
  const args = ['rlhf', stage];
  for (const [key, value] of Object.entries(opts)) {
    if (key === 'resume' || value === undefined || value === null || value === false) continue;
    args.push(`--${flagName(key)}`);
    if (value !== true) args.push(String(value));
  }
  args.push('--resume', checkpoint);
  return args.map(shellQuote).join(' ');
}

/**
 * The end of a run stopped by a signal: no final folder (a half-trained model must not pass for a finished
 * one); the resume command on stderr, the summary line (interrupted, checkpoint, resume) on stdout, and exit
 * code 130.
 */
export function finishInterrupted(stage: string, opts: Record<string, unknown> & CommonFlags, r: TrainResult): void {
  const resume = r.checkpoint ? resumeCommand(stage, opts, r.checkpoint) : null;
  process.stderr.write(resume
    ? `rlhf ${stage}: interrupted after step ${r.steps}; no final model was written. To continue:\n  ${resume}\n`
    : `rlhf ${stage}: interrupted before the first step; nothing was saved\n`);
  printSummary({ command: stage, interrupted: true, steps: r.steps, checkpoint: r.checkpoint, resume, eval: r.lastEval });
  process.exitCode = 130;
}
