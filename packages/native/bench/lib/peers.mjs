// The JavaScript peers: onnxruntime-node (CPU execution provider) and TensorFlow.js on its WebAssembly
// backend. Each loader resolves to { value, version, reason }: value null with a reason when it cannot load,
// so that a suite skips that peer with a note instead of failing.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

function versionOf(pkg) {
  try {
    return require(`${pkg}/package.json`).version;
  } catch {
    return null;
  }
}

/**
 * onnxruntime-node with helpers: session(modelBytes) creates a CPU session with our thread count (intra-op;
 * one inter-op thread, sequential execution: the same budget our kernels get); tensor(data, dims) wraps a
 * Float32Array (or Int32Array, BigInt64Array, Uint8Array for bool) without copying.
 */
export async function loadOrt(threads) {
  try {
    const mod = await import('onnxruntime-node');
    const ort = mod.default ?? mod;
    const session = (bytes, options = {}) =>
      ort.InferenceSession.create(bytes, {
        executionProviders: ['cpu'],
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        // Its intra-op threads otherwise spin after every run, in our process, on the core our second
        // thread needs during our turn of the interleaved race (the same reason numpy's OpenBLAS gets
        // OPENBLAS_THREAD_TIMEOUT): config entry session.intra_op.allow_spinning = 0.
        extra: { session: { intra_op: { allow_spinning: '0' } } },
        ...options,
      });
    const tensor = (data, dims) => {
      const type =
        data instanceof Float32Array ? 'float32'
        : data instanceof Int32Array ? 'int32'
        : data instanceof BigInt64Array ? 'int64'
        : data instanceof Uint8Array ? 'bool'
        : null;
      if (!type) throw new TypeError('ort.tensor: unsupported array type');
      return new ort.Tensor(type, data, dims);
    };
    return { value: { ort, session, tensor }, version: versionOf('onnxruntime-node'), reason: null };
  } catch (err) {
    return { value: null, version: null, reason: `onnxruntime-node unavailable: ${err.message ?? err}` };
  }
}

/**
 * @tensorflow/tfjs-core on @tensorflow/tfjs-backend-wasm, with the .wasm files read from node_modules (no
 * network). In Node the wasm backend runs single-threaded (no SharedArrayBuffer workers); recorded as such.
 */
export async function loadTfWasm() {
  try {
    const tf = await import('@tensorflow/tfjs-core');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    wasm.setWasmPaths(join(dist, '/'));
    await tf.setBackend('wasm');
    await tf.ready();
    if (tf.getBackend() !== 'wasm') throw new Error(`backend is ${tf.getBackend()}, not wasm`);
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    return {
      value: tf,
      version: versionOf('@tensorflow/tfjs-backend-wasm'),
      details: { simd, multithread: threads },
      reason: null,
    };
  } catch (err) {
    return { value: null, version: null, reason: `tfjs-backend-wasm unavailable: ${err.message ?? err}` };
  }
}
