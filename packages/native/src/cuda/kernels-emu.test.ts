// CUDA kernels that no GPU has run here, run on the CPU: each harness in cuda/emu/ compiles a .cu kernel file
// itself with g++ against cuda/emu/cuda_emu.h (blocks, __syncthreads, warp shuffles and the warp-collective
// mma.m16n8k16, whose fragment layout is taken from the PTX ISA, not from the kernels' comments) and compares the
// kernels' outputs with a float64 computation of their contract on random inputs (never zeros), printing per shape
// the worst |kernel − reference| / tolerance (<= 1 passes; tolerances derived in each harness). Compiled with
// AddressSanitizer and UBSan: a read or write outside a buffer or shared memory fails the run.
//   attention_tc.cu (bf16 tensor cores): forward, delta, backward; softmax.cu: forward, backward;
//   decode.cu: decode_softmax_k; elementwise.cu: sum_squares_k (as sumSquaresMany launches it), the bf16 casts.
// Without g++ this skips with a message, except under CI, where it fails.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const emuDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../cuda/emu');
const cxx = process.env.CXX || 'g++';
const hasCxx = spawnSync(cxx, ['--version'], { encoding: 'utf8' }).status === 0;

type Line = { name: string; worst: Record<string, number>; where: Record<string, string> } & Record<string, unknown>;

/** Compiles cuda/emu/<harness>.cc into `dir` and runs it; its JSON lines by shape name. */
function runHarness(dir: string, harness: string): Map<string, Line> {
  const exe = join(dir, harness);
  const cc = spawnSync(cxx, ['-std=c++20', '-O1', '-pthread', '-fno-strict-aliasing', '-Wall', '-Wno-unknown-pragmas', '-Wno-sign-compare', '-Wno-unused-function', '-Werror',
    '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-o', exe, join(emuDir, `${harness}.cc`)], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`compiling cuda/emu/${harness}.cc failed:\n${cc.stderr}`);
  // A deadlock (lanes of a warp meeting different collectives) ends at the time limit instead of hanging.
  const run = spawnSync(exe, [], { encoding: 'utf8', timeout: 240_000 });
  if (run.status !== 0) throw new Error(`cuda/emu/${harness} failed (status ${run.status}, signal ${run.signal}):\n${run.stderr}`);
  const out = new Map<string, Line>();
  for (const line of run.stdout.split('\n')) if (line.startsWith('{')) {
    const r = JSON.parse(line) as Line;
    out.set(r.name, r);
  }
  return out;
}

function expectWithin(r: Line | undefined, name: string): asserts r is Line {
  expect(r, `no result for ${name}`).toBeDefined();
  for (const [k, v] of Object.entries(r!.worst))
    expect(v, `${name} ${k}: worst error / tolerance at ${r!.where[k]}`).toBeLessThanOrEqual(1);
}

/** One describe per harness: compiled and run once, then one test per shape (name: what it covers). */
function harnessSuite(harness: string, title: string, cases: Record<string, string>, check: (r: Line, name: string) => void): void {
  describe(title, () => {
    let results = new Map<string, Line>();
    let dir = '';
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'rlhf-emu-'));
      results = runHarness(dir, harness);
    }, 300_000);
    afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });
    it('ran every shape', () => {
      expect([...results.keys()].sort()).toEqual(Object.keys(cases).sort());
    });
    for (const [name, covers] of Object.entries(cases)) {
      it(`${name}: ${covers}`, () => {
        const r = results.get(name);
        expectWithin(r, name);
        check(r, name);
      });
    }
  });
}

const noKeyCases = new Set(['T17-gqa2-mask', 'D128-T70-gqa2-mask']);

if (!hasCxx && process.env.CI) {
  describe('CUDA kernels under the CPU emulator', () => {
    it('needs a C++20 compiler under CI', () => {
      throw new Error(`${cxx} --version failed: the emulation tests of the CUDA kernels cannot run`);
    });
  });
} else if (!hasCxx) {
  console.warn(`skipping the emulation tests of the CUDA kernels: no ${cxx} (set CXX to a C++20 compiler)`);
} else {
  harnessSuite('attention_tc_emu', 'attention_tc.cu under the CPU emulator (forward, delta, backward against float64)', {
    T1: 'Tq = Tk = 1, D 64, out bf16',
    'T17-gqa2-mask': 'B 2, H 4 / Hkv 2, T 17, key mask with −inf and finite entries, queries that see no key, out f32',
    'T70-offset-cap-mask': 'H 4 / Hkv 2, Tq 70 < Tk 130 (offset 60), kvCapacity 136 (NaN beyond Tk), mask, out bf16',
    'T130-mqa': 'T 130 (three tiles), H 4 / Hkv 1, no mask, out f32',
    'D128-T70-gqa2-mask': 'D 128, T 70, H 4 / Hkv 2, kvCapacity 72, mask, no-key queries, out bf16',
    'D128-T17-offset-mqa': 'D 128, Tq 17 < Tk 130, kvCapacity 144, H 2 / Hkv 1, mask, out f32',
  }, (r, name) => {
    // dk, dv are written on the first Tk positions only; k, v rows beyond Tk (NaN) never reach a result.
    expect(r.untouchedBeyondTk).toBe(true);
    if (noKeyCases.has(name)) expect(r.noKeyRows as number).toBeGreaterThan(0);
  });

  harnessSuite('softmax_emu', 'softmax.cu under the CPU emulator (forward, backward against float64)', {
    cols1: '3 rows of 1 column',
    cols7: '4 rows of 7, scale 0.5',
    'cols300-specials': '6 rows of 300: a row of −inf, a row with +inf, a row with NaN, −inf entries among finite ones',
    cols1000: '2 rows of 1000, scale 2',
  }, (r) => {
    expect(r.specialsOk).toBe(true);  // no distribution: y NaN, lse ±inf (NaN for a NaN entry)
    expect(r.inPlaceOk).toBe(true);   // y = x and dx = dy give the out-of-place bits
  });

  harnessSuite('decode_emu', 'decode.cu decode_softmax_k under the CPU emulator (against float64)', {
    cols1: '3 rows of 1 (stride 4)',
    'cols7-ld9': '4 rows of 7, stride 9, scale 0.7, −inf entries, a tied maximum',
    'cols300-noprobs': '3 rows of 300, stride 303, probs not asked',
    'cols1000-grid2': '5 rows of 1000 on 2 blocks (the grid-stride loop), scale 1.3',
  }, (r) => {
    expect(r.argmaxOk).toBe(true);  // the first position holding the maximum
    expect(r.untouchedBeyondCols).toBe(true);
  });

  harnessSuite('elementwise_emu', 'elementwise.cu sum_squares_k and the bf16 casts under the CPU emulator', {
    sumSquaresMany: 'tensors of 1, 255, 257, 5000 elements (and 5000 on 3 blocks) into their own doubles, against long double',
    castBf16: '3012 floats to bf16 (ties both ways, subnormals, the largest float, ±inf, ±0, NaNs) and back',
  }, (r, name) => {
    if (name === 'castBf16') {
      expect(r.wrong, `first wrong: ${r.first as string}`).toBe(0);  // the nearest bf16, ties to even; NaN stays NaN
      expect(r.wrongBack).toBe(0);
    }
  });
}
