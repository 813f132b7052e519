#!/usr/bin/env node
/**
 * The llama.cpp peer of decode-bench.ts: node-llama-cpp (pinned 3.21.1, installed by the user in a folder of its
 * own, never a dependency of this repository) decoding greedily on the CPU. Started by decode-bench.ts as
 *   node decode-llamacpp.mjs NODE_LLAMA_CPP_DIR MODEL.gguf THREADS
 * it loads the model once, then answers each request line {"batch": B, "newTokens": N, "prompt": [ids], "maxMs": T} on stdin
 * with one JSON line on stdout (rates, and the CPU time of the process per token made): B sequences of one context, each evaluating the prompt then N tokens (temperature 0;
 * node-llama-cpp batches the sequences' tokens into one llama_decode per step), and the decode rate counted as
 * decode-bench.ts counts ours: tokens after each sequence's first, over the time from the first token to the last.
 * maxMs (optional) ends the sequences early once that much time has passed (a peer that crawls on a loaded machine
 * still gives its rate, over the tokens it made).
 */
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, modelPath, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg ?? 2);
const { getLlama } = await import(pathToFileURL(join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href);
const llama = await getLlama({ gpu: false, logLevel: 'error' });
const model = await llama.loadModel({ modelPath, gpuLayers: 0 });

async function run(batch, newTokens, prompt, maxMs = Infinity) {
  // contextSize is per sequence: node-llama-cpp makes contextSize x sequences cells (LlamaContext.js: "each
  // sequence needs its own <contextSize> of cells"); a total here gave batch² cells (22 GB at batch 64 of 110M)
  // One llama_decode per step for all the sequences: node-llama-cpp's default schedule dispatches on the next
  // cycle after the first sequence queues its token, while the others are still sampling (an asynchronous native
  // call each), so a step of B sequences became several smaller decodes (batch 32 ran at ~1.6x batch 1). This
  // schedule waits (on later cycles, 20 ms at most) until every sequence still running has queued its token.
  // `decodes` counts the llama_decode calls (about newTokens + 1 when each step is one decode).
  let running = batch, decodes = 0, ctx;
  const queued = () => ctx?._queuedDecodeSequenceIds?.size ?? Infinity; // internal (3.21.1); unknown: dispatch at once
  const dispatchSchedule = (dispatch) => {
    const from = performance.now();
    const poll = () => {
      if (queued() >= running || performance.now() - from > 20) dispatch();
      else setImmediate(poll);
    };
    setImmediate(poll);
  };
  ctx = await model.createContext({ contextSize: prompt.length + newTokens + 16, sequences: batch, threads, batchSize: Math.max(512, batch * 8), batching: { dispatchSchedule } });
  const seqs = Array.from({ length: batch }, () => ctx.getSequence());
  // count llama_decode calls: the context's native binding (internal, 3.21.1) behind a proxy; absent: null
  const native = ctx._ctx;
  if (native?.decodeBatch) {
    ctx._ctx = new Proxy(native, {
      get: (t, k) => {
        const v = t[k];
        if (k === 'decodeBatch') return (...a) => (decodes++, v.apply(t, a));
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
  } else decodes = null;
  const stamps = [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage(); // llama.cpp's threads are this process's
  const outs = await Promise.all(
    seqs.map(async (seq) => {
      const got = [];
      for await (const t of seq.evaluate(prompt, { temperature: 0 })) {
        got.push(t);
        stamps.push(performance.now());
        if (got.length >= newTokens || (got.length >= 2 && performance.now() - t0 > maxMs)) break;
      }
      running--;
      return got;
    }),
  );
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await ctx.dispose();
  stamps.sort((a, b) => a - b);
  const total = outs.reduce((s, o) => s + o.length, 0);
  const decodeMs = stamps[stamps.length - 1] - stamps[0];
  return {
    batch,
    newTokens: Math.min(...outs.map((o) => o.length)),
    wallTokPerSec: (total / wallMs) * 1e3,
    decodeTokPerSec: decodeMs > 0 ? ((total - batch) / decodeMs) * 1e3 : NaN,
    cpuMsPerToken: (cpu.user + cpu.system) / 1e3 / total,
    decodes,
    first: outs[0].slice(0, 16),
  };
}

const rl = createInterface({ input: process.stdin });
console.log(JSON.stringify({ ready: true }));
for await (const line of rl) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  if (req.quit) break;
  try {
    console.log(JSON.stringify(await run(req.batch, req.newTokens, req.prompt, req.maxMs ?? Infinity)));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e && e.message ? e.message : e) }));
  }
}
process.exit(0);
