// The numpy/OpenBLAS peer: a persistent python3 subprocess (numpy_server.py) so that interpreter start-up
// and pipe latency are never timed. OpenBLAS is given the same thread count as our kernels; the variables
// that would pin it to another CPU model or cache size (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE) are unset so
// that it chooses its kernel for this CPU itself.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export class NumpyPeer {
  #proc;
  #pending = new Map();
  #nextId = 1;
  #timers = 0;
  /** Filled by start(): numpy version, its BLAS, the OpenBLAS core chosen at run time, threads. */
  config = null;

  /** Starts python3; resolves to { peer, reason }: peer null with the reason when numpy cannot be imported. */
  static async start({ threads, python = process.env.PYTHON ?? 'python3' } = {}) {
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    // OpenBLAS's idle worker threads spin for 2^28 cycles (~0.1 s) after each call before sleeping. In an
    // interleaved race that spinning runs through our turn and takes the core our second thread needs: on a
    // quiet 2-core host our 2-thread sgemm n = 1024 measured 120 GFLOP/s in the race against default
    // OpenBLAS, 255-261 against OpenBLAS with OPENBLAS_THREAD_TIMEOUT=4, 251-267 alone. 4 (sleep at once)
    // would charge numpy a wake-up per call; 2^20 cycles (~0.4 ms, the value set here, not measured there)
    // keeps its threads warm within its own sample, about as long as our libgomp threads spin
    // (GOMP_SPINCOUNT). An OPENBLAS_THREAD_TIMEOUT already set is kept.
    if (!env.OPENBLAS_THREAD_TIMEOUT) env.OPENBLAS_THREAD_TIMEOUT = '20';
    if (threads) {
      env.OPENBLAS_NUM_THREADS = String(threads);
      env.OMP_NUM_THREADS = String(threads);
    }
    const peer = new NumpyPeer();
    try {
      await peer.#spawn(python, env);
      peer.config = await peer.exec(CONFIG_CODE);
      return { peer, reason: null };
    } catch (err) {
      peer.close();
      return { peer: null, reason: err instanceof Error ? err.message : String(err) };
    }
  }

  #spawn(python, env) {
    return new Promise((resolve, reject) => {
      const proc = spawn(python, ['-u', join(here, 'numpy_server.py')], { env, stdio: ['pipe', 'pipe', 'pipe'] });
      this.#proc = proc;
      let stderr = '';
      proc.stderr.on('data', (d) => (stderr += d));
      proc.on('error', (e) => reject(e));
      proc.on('exit', (code) => {
        const err = new Error(`python3 exited (${code}): ${stderr.trim().slice(-500)}`);
        for (const { reject: rj } of this.#pending.values()) rj(err);
        this.#pending.clear();
      });
      createInterface({ input: proc.stdout }).on('line', (line) => {
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          return; // stray output from user code: ignored
        }
        const p = this.#pending.get(msg.id);
        if (!p) return;
        this.#pending.delete(msg.id);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new Error(`numpy: ${msg.error}`));
      });
      proc.on('spawn', () => resolve());
    });
  }

  #request(obj) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#proc.stdin.write(JSON.stringify({ id, ...obj }) + '\n');
    });
  }

  /** Runs Python code in the shared namespace; resolves to the value it assigned to `result`, if any. */
  exec(code) {
    return this.#request({ op: 'exec', code });
  }

  /**
   * A timer for the harness: `setup` runs once now (make the arrays there), `stmt` is what is timed.
   * The returned object's sample(reps) resolves to the total milliseconds of reps runs, timed in Python.
   */
  async timer(setup, stmt) {
    if (setup) await this.exec(setup);
    const key = `t${this.#timers++}`;
    await this.#request({ op: 'define', key, stmt });
    return { sample: (reps) => this.#request({ op: 'time', key, reps }) };
  }

  close() {
    if (this.#proc && this.#proc.exitCode === null) this.#proc.stdin.end();
  }
}

const CONFIG_CODE = `
import numpy as np, os
cfg = {}
try:
    cfg = np.show_config(mode='dicts')
except TypeError:
    pass
blas = (cfg.get('Build Dependencies') or {}).get('blas') or {}
result = {'numpy': np.__version__, 'blas': blas.get('name'), 'blasVersion': blas.get('version'),
          'blasConfig': blas.get('openblas configuration'),
          'OPENBLAS_NUM_THREADS': os.environ.get('OPENBLAS_NUM_THREADS'),
          'OPENBLAS_THREAD_TIMEOUT': os.environ.get('OPENBLAS_THREAD_TIMEOUT')}
# The OpenBLAS core kernel chosen at run time (DYNAMIC_ARCH builds pick one per CPU) and its thread count.
try:
    import ctypes, glob
    here = os.path.dirname(np.__file__)
    libs = glob.glob(here + '.libs/*openblas*.so*') + glob.glob(os.path.join(here, '..', 'scipy_openblas*', 'lib', '*.so*'))
    for path in libs:
        lib = ctypes.CDLL(path)
        for name in ('scipy_openblas_get_corename64_', 'scipy_openblas_get_corename', 'openblas_get_corename'):
            fn = getattr(lib, name, None)
            if fn is not None and 'coreName' not in result:
                fn.restype = ctypes.c_char_p
                result['coreName'] = fn().decode()
        for name in ('scipy_openblas_get_num_threads64_', 'scipy_openblas_get_num_threads', 'openblas_get_num_threads'):
            fn = getattr(lib, name, None)
            if fn is not None and 'blasThreads' not in result:
                result['blasThreads'] = int(fn())
except Exception as e:
    result['coreNameError'] = str(e)
`;
