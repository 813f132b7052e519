/**
 * The READMEs' code runs: the `ts` blocks of each README below, concatenated in order into one program, are
 * type-checked against the built package (what a user's editor sees) and run with node on stories260K, in a
 * fresh folder that holds `models/stories260K/` (the shared model, linked). A README whose code does not
 * compile or throws fails here, with the README line of each type error.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const READMES = ['README.md', 'src/trainers/README.md'];

/** The `ts` blocks of a Markdown file as one program, and for each program line the README line it came from. */
function readmeProgram(markdown: string): { code: string; lineOf: number[] } {
  const lines = markdown.split('\n');
  const out: string[] = [];
  const lineOf: number[] = [];
  let inBlock = false;
  lines.forEach((line, i) => {
    if (!inBlock && /^```ts\s*$/.test(line)) inBlock = true;
    else if (inBlock && /^```\s*$/.test(line)) inBlock = false;
    else if (inBlock) {
      out.push(line);
      lineOf.push(i + 1);
    }
  });
  return { code: out.join('\n'), lineOf };
}

// Written under node_modules (ignored by git) inside this package, so that '@rlhf/core' and '@rlhf/data'
// resolve to the workspace packages as they do for a user's project.
const work = join(pkg, 'node_modules', '.readme-test');
const runDir = mkdtempSync(join(tmpdir(), 'rlhf-readme-'));
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(runDir, { recursive: true, force: true });
});

describe.each(READMES)('%s', (readme) => {
  const { code, lineOf } = readmeProgram(readFileSync(join(pkg, readme), 'utf8'));
  const name = readme.replace(/[/.]/g, '-');
  const file = join(work, `${name}.ts`);

  it('has code', () => {
    expect(code.length).toBeGreaterThan(100);
  });

  it('type-checks against the built package', () => {
    mkdirSync(work, { recursive: true });
    // a module: top-level await is allowed, as in an ESM project
    writeFileSync(file, `${code}\nexport {};\n`);
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      types: ['node'],
      skipLibCheck: true,
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      if (!d.file || d.start === undefined) return text;
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      const at = d.file.fileName === file ? `${readme}:${lineOf[line] ?? '?'}` : relative(pkg, d.file.fileName);
      return `${at}: ${text}`;
    });
    expect(problems).toEqual([]);
  }, 120_000);

  it.skipIf(!sharedDirForTests())('runs on stories260K', () => {
    mkdirSync(join(runDir, 'models'), { recursive: true });
    try {
      symlinkSync(dirname(sharedPath('models/stories260K/stories260K.bin')), join(runDir, 'models', 'stories260K'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const cwd = join(runDir, name);
    mkdirSync(cwd, { recursive: true });
    symlinkSync(join(runDir, 'models'), join(cwd, 'models'));
    const js = join(work, `${name}.mjs`);
    mkdirSync(work, { recursive: true });
    writeFileSync(js, ts.transpileModule(`${code}\nexport {};\n`, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText);
    const r = spawnSync(process.execPath, [js], { cwd, encoding: 'utf8', env: { ...process.env, RLHF_NUM_THREADS: process.env.RLHF_NUM_THREADS ?? '2' }, timeout: 240_000 });
    if (r.status !== 0) console.error(r.stdout, r.stderr);
    expect(r.error).toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(0);
  }, 300_000);
});
