// attention_tc.cu (bf16 tensor-core attention: mma.sync.m16n8k16, forward, delta and backward kernels) has no GPU
// to run on here: this test compiles the kernel file itself with g++ against cuda/emu/cuda_emu.h (a CPU
// emulation of blocks, __syncthreads, warp shuffles and the warp-collective mma, whose fragment layout is
// taken from the PTX ISA, not from the kernel's comments) and runs cuda/emu/attention_tc_emu.cc, which compares
// every output with a float64 attention on random bf16 inputs (never zero) and prints, per shape, the worst
// |kernel − reference| / tolerance (tolerances derived in that file: 2^-8 on the sums the bf16 roundings of P
// and dS enter, 1e-4 for float32 steps). Without g++ it skips with a message, except under CI, where it fails.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const cudaDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../cuda');
const cxx = process.env.CXX || 'g++';
const hasCxx = spawnSync(cxx, ['--version'], { encoding: 'utf8' }).status === 0;

interface CaseResult {
  name: string;
  B: number; H: number; Hkv: number; Tq: number; Tk: number; cap: number; D: number;
  outBf16: boolean; mask: boolean; noKeyRows: number; ms: number; untouchedBeyondTk: boolean;
  worst: Record<'out' | 'lse' | 'dq' | 'dk' | 'dv', number>;
  where: Record<string, string>;
}

// The shapes of attention_tc_emu.cc (name: what it covers), with the no-key rows each must contain.
const CASES: Record<string, { covers: string; noKeyRows: boolean }> = {
  T1: { covers: 'Tq = Tk = 1, D 64, out bf16', noKeyRows: false },
  'T17-gqa2-mask': { covers: 'B 2, H 4 / Hkv 2, T 17, key mask with −inf and finite entries, queries that see no key, out f32', noKeyRows: true },
  'T70-offset-cap-mask': { covers: 'H 4 / Hkv 2, Tq 70 < Tk 130 (offset 60), kvCapacity 136 (NaN beyond Tk), mask, out bf16', noKeyRows: false },
  'T130-mqa': { covers: 'T 130 (three tiles), H 4 / Hkv 1, no mask, out f32', noKeyRows: false },
  'D128-T70-gqa2-mask': { covers: 'D 128, T 70, H 4 / Hkv 2, kvCapacity 72, mask, no-key queries, out bf16', noKeyRows: true },
  'D128-T17-offset-mqa': { covers: 'D 128, Tq 17 < Tk 130, kvCapacity 144, H 2 / Hkv 1, mask, out f32', noKeyRows: false },
};

if (!hasCxx && process.env.CI) {
  describe('attention_tc.cu under the CPU emulator', () => {
    it('needs a C++20 compiler under CI', () => {
      throw new Error(`${cxx} --version failed: the emulation test of attention_tc.cu cannot run`);
    });
  });
} else if (!hasCxx) {
  console.warn(`skipping the emulation test of attention_tc.cu: no ${cxx} (set CXX to a C++20 compiler)`);
} else {
  describe('attention_tc.cu under the CPU emulator (forward, delta, backward against float64)', () => {
    const results = new Map<string, CaseResult>();
    let dir = '';
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'rlhf-tc-emu-'));
      const exe = join(dir, 'attention_tc_emu');
      // AddressSanitizer: a read or write outside q, k, v, dout, mask, the outputs or shared memory fails the run.
      const cc = spawnSync(cxx, ['-std=c++20', '-O1', '-pthread', '-fno-strict-aliasing', '-Wall', '-Wno-unknown-pragmas', '-Werror',
        '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-o', exe, join(cudaDir, 'emu', 'attention_tc_emu.cc')],
        { encoding: 'utf8' });
      if (cc.status !== 0) throw new Error(`compiling the emulation harness failed:\n${cc.stderr}`);
      // A deadlock (lanes of a warp meeting different collectives) ends at the time limit instead of hanging.
      const run = spawnSync(exe, [], { encoding: 'utf8', timeout: 240_000 });
      if (run.status !== 0) throw new Error(`the emulation harness failed (status ${run.status}, signal ${run.signal}):\n${run.stderr}`);
      for (const line of run.stdout.split('\n')) if (line.startsWith('{')) {
        const r = JSON.parse(line) as CaseResult;
        results.set(r.name, r);
      }
    }, 300_000);
    afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

    it('ran every shape', () => {
      expect([...results.keys()].sort()).toEqual(Object.keys(CASES).sort());
    });
    for (const [name, { covers, noKeyRows }] of Object.entries(CASES)) {
      it(`${name}: ${covers}`, () => {
        const r = results.get(name);
        expect(r, `no result for ${name}`).toBeDefined();
        if (!r) return;
        for (const k of ['out', 'lse', 'dq', 'dk', 'dv'] as const)
          expect(r.worst[k], `${name} ${k}: worst error / tolerance at ${r.where[k]}`).toBeLessThanOrEqual(1);
        // dk, dv are written on the first Tk positions only; k, v rows beyond Tk (NaN) were never read into a result.
        expect(r.untouchedBeyondTk).toBe(true);
        if (noKeyRows) expect(r.noKeyRows).toBeGreaterThan(0);
      });
    }
  });
}
