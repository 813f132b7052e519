/**
 * How a trainer reports progress. The core never draws: it calls a `ProgressReporter`; the CLI passes a
 * TTY bar (cli-progress) when stdout is a terminal, and `LineProgress` writes plain lines otherwise
 * (CI logs, pipes). Library users pass their own or `silentProgress`.
 */
export interface ProgressReporter {
  /** A phase starts (`sft`, `ppo`, `eval` ...) with this many steps in all; `startStep` > 0 on resume. */
  start(label: string, totalSteps: number, startStep: number): void;
  /** One optimizer step done; `metrics` are that step's numbers (loss, lr, ...). */
  update(step: number, metrics: Record<string, number>): void;
  /** A message between steps (checkpoint written, eval result, NaN skipped). */
  log(message: string): void;
  stop(): void;
}

export const silentProgress: ProgressReporter = {
  start() {},
  update() {},
  log() {},
  stop() {},
};

/** Formats a metric for a one-line display: 4 significant digits, exponent for tiny or huge values. */
export function formatMetric(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

/** Plain lines: `[sft] step 10/200 loss=0.53 lr=1e-4`, every `every` steps and on the last one. */
export class LineProgress implements ProgressReporter {
  private label = '';
  private total = 0;

  constructor(
    private readonly write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    private readonly every = 1,
  ) {}

  start(label: string, totalSteps: number, startStep: number): void {
    this.label = label;
    this.total = totalSteps;
    this.write(`[${label}] ${startStep > 0 ? `resuming at step ${startStep} of` : 'starting,'} ${totalSteps} steps`);
  }

  update(step: number, metrics: Record<string, number>): void {
    if (step % this.every !== 0 && step !== this.total) return;
    const parts = Object.entries(metrics).map(([k, v]) => `${k}=${formatMetric(v)}`);
    this.write(`[${this.label}] step ${step}/${this.total} ${parts.join(' ')}`.trimEnd());
  }

  log(message: string): void {
    // before start() (a trainer's constructor) there is no label yet
    this.write(this.label ? `[${this.label}] ${message}` : message);
  }

  stop(): void {}
}
