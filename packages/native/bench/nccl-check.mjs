#!/usr/bin/env node
/**
 * NCCL through rlhf_cuda.node, one rank (bench/gpu.sh runs it; no MPI needed): unique id, communicator, all-reduce
 * (sum, avg), broadcast, all-gather and barrier on device buffers, checked against the values uploaded, then the
 * time of a 64 MiB all-reduce (one rank: NCCL's local path, a check that it runs, not a bandwidth), and the error
 * paths. Prints one JSON line; exit code 1 when a check fails.
 *   RLHF_NCCL_LIB=.../libnccl.so.2 node bench/nccl-check.mjs --cuda build/rlhf_cuda.node
 */
import { createRequire } from 'node:module';

const argv = process.argv.slice(2);
const cudaPath = argv[argv.indexOf('--cuda') + 1];
const c = createRequire(import.meta.url)(cudaPath);
const out = { info: c.ncclInfo(), checks: [], ok: true };
const check = (name, ok, detail = '') => {
  out.checks.push({ name, ok, ...(detail ? { detail } : {}) });
  if (!ok) out.ok = false;
};
if (!out.info.available) {
  out.ok = false;
  console.log(JSON.stringify(out));
  process.exit(1);
}
const upload = (a) => new c.DeviceBuffer(a.length, 'f32', 'x').upload(a);
try {
  c.ncclInit(c.ncclUniqueId(), 0, 1, 60);
  check('init', c.ncclInfo().initialized === true);
  const host = Float32Array.from({ length: 1003 }, (_, i) => Math.sin(i) + 0.5);
  const x = upload(host);
  c.ncclAllReduce(x, 'sum');
  c.ncclAllReduce(x, 'avg');
  const back = x.download();
  check('allReduce sum + avg on one rank leave the data', back.every((v, i) => v === host[i]));
  c.ncclBroadcast(x, 0);
  const g = new c.DeviceBuffer(1003, 'f32', 'g');
  c.ncclAllGather(x, g);
  check('allGather on one rank copies', g.download().every((v, i) => v === host[i]));
  c.ncclBarrier();
  check('barrier', true);
  const big = new c.DeviceBuffer(16 << 20, 'f32', 'big').upload(new Float32Array(16 << 20).fill(1));
  c.ncclAllReduce(big, 'sum');
  const t = [];
  for (let r = 0; r < 10; r++) {
    const t0 = performance.now();
    c.ncclAllReduce(big, 'sum');
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  out.allReduce64MiBMs = t[5];
  const errors = [
    ['op', () => c.ncclAllReduce(x, 'max'), /argument 1 'op' must be 'sum' or 'avg'/],
    ['recv too short', () => c.ncclAllGather(x, new c.DeviceBuffer(10, 'f32', 's')), /argument 1 'recv'.*too short/],
    ['id length', () => c.ncclInit(new Uint8Array(3), 0, 1), /128-byte Uint8Array/],
    ['second init', () => c.ncclInit(new Uint8Array(128), 0, 1), /already has an NCCL communicator/],
  ];
  for (const [name, f, re] of errors) {
    let msg = '';
    try {
      f();
    } catch (e) {
      msg = e.message;
    }
    check(`error: ${name}`, re.test(msg), msg);
  }
  c.ncclDestroy();
  let after = '';
  try {
    c.ncclBarrier();
  } catch (e) {
    after = e.message;
  }
  check('destroyed communicator refuses', /no NCCL communicator/.test(after), after);
} catch (e) {
  check('no exception', false, e.message);
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
