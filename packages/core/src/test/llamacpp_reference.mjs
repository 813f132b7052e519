// llama.cpp (through node-llama-cpp, installed outside the repository by scripts/setup-node-llama-cpp.sh) as the
// independent reader of our GGUF exports. node llamacpp_reference.mjs NODE_LLAMA_CPP_DIR JOBS.json
// A job: { gguf, sequences: number[][], texts: string[] }. For each sequence, at every position t < T - 1:
// log p(ids[t + 1] | ids[..t]) and the most likely next token (a full softmax of the logits: temperature 1, no
// top-k/top-p/min-p); for each text, llama.cpp's token ids (no BOS, special tokens not parsed).
// Prints [{ sequences: [{ logprobs, argmax }], tokens: number[][] } | { error }] as JSON.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, jobsPath] = process.argv.slice(2);
const { getLlama } = await import(pathToFileURL(join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href);
const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
const jobs = JSON.parse(readFileSync(jobsPath, 'utf8'));
const out = [];
const FULL = { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } };
for (const job of jobs) {
  try {
    const model = await llama.loadModel({ modelPath: job.gguf, gpuLayers: 0 });
    const sequences = [];
    for (const ids of job.sequences ?? []) {
      // an F32 KV cache (llama.cpp's default is F16, which rounds every key and value) and no flash attention
      const ctx = await model.createContext({
        contextSize: Math.max(32, ids.length + 8), threads: 1, batchSize: Math.max(32, ids.length + 8),
        experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false,
      });
      const res = await ctx.getSequence().controlledEvaluate(ids.map((t) => [t, FULL]));
      const logprobs = [], argmax = [];
      for (let t = 0; t + 1 < ids.length; t++) {
        const p = res[t]?.next?.probabilities;
        if (!p) throw new Error(`no probabilities at position ${t}`);
        logprobs.push(Math.log(p.get(ids[t + 1]) ?? 0));
        argmax.push(p.entries().next().value[0]); // the map is sorted, most likely first
      }
      sequences.push({ logprobs, argmax });
      await ctx.dispose();
    }
    const tokens = (job.texts ?? []).map((text) => Array.from(model.tokenize(text, false)));
    await model.dispose();
    out.push({ sequences, tokens });
  } catch (e) {
    out.push({ error: String(e?.stack ?? e) });
  }
}
process.stdout.write(JSON.stringify(out));
process.exit(0);
