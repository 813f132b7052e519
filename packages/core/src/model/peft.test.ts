/**
 * Adapters in PEFT's format. What PEFT reads is taken from its documentation, docs/source/developer_guides/
 * checkpoint.md ("PEFT checkpoint format", huggingface/peft): an adapter folder holds adapter_model.safetensors and
 * adapter_config.json; the tensors are `base_model.model.<module>.lora_A.weight` and `.lora_B.weight` for every
 * adapted module (nn.Linear weights: A (r, in_features), B (out_features, r)), the adapter name stripped; the config
 * has the LoraConfig keys its example lists. Modules to save (a classifier head) are stored whole under
 * `base_model.model.<module>.<param>` (utils/other.py, ModulesToSaveWrapper.adapter_state_dict; SEQ_CLS models save
 * their `score`). The files are read back here by hand (the safetensors header is plain JSON), not by our reader.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sharedDirForTests, sharedPath } from '@rlhf/data';
import { readSafetensors, writeSafetensors } from '../io/safetensors';
import { maxRelError } from '../test/gradcheck';
import { runReference, spreadWeights, torchAvailable } from '../test/hf-reference';
import { noGrad } from '../tensor/autograd';
import { Rng } from '../util/rng';
import type { CausalLM } from './common';
import { GPT2 } from './gpt2';
import { RewardModel } from './heads';
import { Llama } from './llama';
import { addLora, withoutAdapters, type LoraSpec } from './lora';
import { loadAdapter, readAdapterConfig, saveAdapter } from './peft';
import { fromPretrained, savePretrained } from './pretrained';
import { loadRewardModel } from '../trainers/model-dirs';

const tmp = mkdtempSync(join(tmpdir(), 'rlhf-peft-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (name: string) => join(tmp, `${n++}-${name}`);

const gptConfig = { vocabSize: 61, nPositions: 24, nEmbd: 12, nLayer: 2, nHead: 3 };
const llamaConfig = { vocabSize: 59, hiddenSize: 16, intermediateSize: 20, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 24, ropeTheta: 100 };
const tinyGpt = () => new GPT2(gptConfig, { seed: 1 });
const tinyLlama = (interleaved = false, seed = 2) => new Llama({ ...llamaConfig, ropeInterleaved: interleaved }, { seed });

/** The safetensors header of a file, parsed by hand: { name: { dtype, shape, data_offsets } }. */
function header(path: string): Record<string, { dtype: string; shape: number[] }> {
  const buf = readFileSync(path);
  const len = Number(buf.readBigUInt64LE(0));
  return JSON.parse(buf.subarray(8, 8 + len).toString('utf8'));
}

/** Every B (and A) moved off its init, and every module trained whole moved, so that an adapter changes the model. */
function moveAdapters(m: CausalLM, seed: number, scale = 0.5): void {
  const r = new Rng(seed);
  for (const a of m.lora!.list()) {
    for (let i = 0; i < a.B.size; i++) a.B.data[i] = (r.next() - 0.5) * scale;
    for (let i = 0; i < a.A.size; i++) a.A.data[i] += (r.next() - 0.5) * scale;
  }
  for (const [n, t] of m.namedParameters()) if (m.lora!.saved.has(n)) for (let i = 0; i < t.size; i++) t.data[i] += (r.next() - 0.5) * scale;
}

function logitsOf(m: CausalLM, ids = [3, 17, 42, 5, 29, 8]): Float32Array {
  return noGrad(() => m.logits(m.forward({ ids: Int32Array.from(ids), B: 1, T: ids.length })).data.slice());
}

/** A base saved as a model folder, and the same weights in memory. */
function baseFolder(make: () => CausalLM, name: string): { dir: string; model: CausalLM } {
  const model = make();
  const dir = fresh(name);
  savePretrained(model, dir);
  return { dir, model };
}

// The keys of checkpoint.md's LoRA adapter_config.json example (BERT, default settings): all present, sorted.
const DOCUMENTED_KEYS = [
  'alpha_pattern', 'auto_mapping', 'base_model_name_or_path', 'bias', 'fan_in_fan_out', 'inference_mode', 'init_lora_weights',
  'layer_replication', 'layers_pattern', 'layers_to_transform', 'loftq_config', 'lora_alpha', 'lora_dropout', 'megatron_config',
  'megatron_core', 'modules_to_save', 'peft_type', 'r', 'rank_pattern', 'revision', 'target_modules', 'task_type', 'use_dora', 'use_rslora',
];

describe('an adapter saved here is what PEFT reads (checkpoint.md)', () => {
  it('Llama, all-linear: two files, PEFT key names and shapes, the documented config keys and values', () => {
    const { dir: base, model } = baseFolder(() => tinyLlama(), 'llama-base');
    addLora(model, { r: 4, alpha: 8, dropout: 0.1, targetModules: 'all-linear', useRslora: true });
    const dir = fresh('llama-adapter');
    saveAdapter(dir, model, { baseModelNameOrPath: base });
    expect(readdirSync(dir).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const h = header(join(dir, 'adapter_model.safetensors'));
    const { __metadata__: meta, ...tensors } = h as Record<string, unknown>;
    expect(meta).toEqual({ format: 'pt' });
    const want: Record<string, number[]> = {};
    const shapes: Record<string, [number, number]> = { 'self_attn.q_proj': [16, 16], 'self_attn.k_proj': [8, 16], 'self_attn.v_proj': [8, 16], 'self_attn.o_proj': [16, 16], 'mlp.gate_proj': [20, 16], 'mlp.up_proj': [20, 16], 'mlp.down_proj': [16, 20] };
    for (let l = 0; l < 2; l++) {
      for (const [m, [out, inp]] of Object.entries(shapes)) {
        want[`base_model.model.model.layers.${l}.${m}.lora_A.weight`] = [4, inp];
        want[`base_model.model.model.layers.${l}.${m}.lora_B.weight`] = [out, 4];
      }
    }
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(want).sort());
    for (const [k, shape] of Object.entries(want)) {
      expect((tensors[k] as { shape: number[] }).shape, k).toEqual(shape);
      expect((tensors[k] as { dtype: string }).dtype, k).toBe('F32');
    }
    const text = readFileSync(join(dir, 'adapter_config.json'), 'utf8');
    const config = JSON.parse(text) as Record<string, unknown>;
    for (const k of DOCUMENTED_KEYS) expect(config, k).toHaveProperty(k);
    expect(Object.keys(config)).toEqual([...Object.keys(config)].sort()); // json.dumps(sort_keys=True)
    expect(config).toMatchObject({
      peft_type: 'LORA', r: 4, lora_alpha: 8, lora_dropout: 0.1, use_rslora: true, use_dora: false, bias: 'none', fan_in_fan_out: false,
      task_type: 'CAUSAL_LM', modules_to_save: null, inference_mode: true, init_lora_weights: true, rank_pattern: {}, alpha_pattern: {},
      layers_to_transform: null, base_model_name_or_path: base,
      // 'all-linear' written as the names it selected (PEFT matches a list entry by the end of the module name)
      target_modules: ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj'],
    });
  });

  it('GPT-2: modules under transformer. (GPT2LMHeadModel), fan_in_fan_out for its Conv1D layers', () => {
    const m = tinyGpt();
    addLora(m, { r: 2, alpha: 4 }); // PEFT's default for gpt2: c_attn
    const dir = fresh('gpt2-adapter');
    saveAdapter(dir, m);
    const keys = Object.keys(header(join(dir, 'adapter_model.safetensors'))).filter((k) => k !== '__metadata__').sort();
    expect(keys).toEqual([
      'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight', 'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight',
      'base_model.model.transformer.h.1.attn.c_attn.lora_A.weight', 'base_model.model.transformer.h.1.attn.c_attn.lora_B.weight',
    ]);
    // Conv1D's weight is (in, out) but PEFT's lora_A / lora_B are nn.Linear of (in -> r) and (r -> out) all the same
    expect(header(join(dir, 'adapter_model.safetensors'))['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight'].shape).toEqual([36, 2]);
    const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ target_modules: ['c_attn'], fan_in_fan_out: true, base_model_name_or_path: null });
  });

  it("modules of the model itself in modules_to_save, stored whole under their transformers names; a tied head's embedding with ensure_weight_tying", () => {
    const g = tinyGpt();
    addLora(g, { r: 2, alpha: 4, targetModules: ['c_attn'], modulesToSave: ['wte', 'ln_f'] });
    const dir = fresh('gpt2-saved');
    saveAdapter(dir, g);
    const h = header(join(dir, 'adapter_model.safetensors'));
    expect(h['base_model.model.transformer.wte.weight'].shape).toEqual([61, 12]);
    expect(h['base_model.model.transformer.ln_f.weight'].shape).toEqual([12]);
    expect(h['base_model.model.transformer.ln_f.bias'].shape).toEqual([12]);
    expect(Object.keys(h).filter((k) => !/lora_|__metadata__/.test(k)).sort()).toEqual(['base_model.model.transformer.ln_f.bias', 'base_model.model.transformer.ln_f.weight', 'base_model.model.transformer.wte.weight']);
    // GPT-2's head is wte: PEFT keeps it tied to the trained copy only with ensure_weight_tying
    expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))).toMatchObject({ modules_to_save: ['wte', 'ln_f'], ensure_weight_tying: true, task_type: 'CAUSAL_LM' });
    // an untied Llama's own lm_head: no tying to keep
    const l = tinyLlama();
    addLora(l, { r: 2, alpha: 2, targetModules: ['q_proj'], modulesToSave: ['lm_head'] });
    const d2 = fresh('llama-saved');
    saveAdapter(d2, l);
    expect(header(join(d2, 'adapter_model.safetensors'))['base_model.model.lm_head.weight'].shape).toEqual([59, 16]);
    expect(JSON.parse(readFileSync(join(d2, 'adapter_config.json'), 'utf8'))).toMatchObject({ modules_to_save: ['lm_head'], ensure_weight_tying: false });
  });

  it('a reward model: task_type SEQ_CLS, its score head in modules_to_save, stored whole as base_model.model.score.weight', () => {
    const rm = new RewardModel(tinyLlama());
    addLora(rm.model, { r: 2, alpha: 2, targetModules: ['q_proj', 'v_proj'] });
    const dir = fresh('rm-adapter');
    saveAdapter(dir, rm.model, { heads: rm.head.namedParameters() });
    const h = header(join(dir, 'adapter_model.safetensors'));
    expect(h['base_model.model.score.weight'].shape).toEqual([1, 16]);
    expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'))).toMatchObject({ task_type: 'SEQ_CLS', modules_to_save: ['score'] });
  });
});

describe('adapters load back onto their base', () => {
  it('loadAdapter, fromPretrained(adapter folder) and mergeAdapter give the adapted model (Llama and GPT-2)', () => {
    for (const [name, make, spec] of [
      ['llama', () => tinyLlama(), { r: 3, alpha: 5, targetModules: 'all-linear', rankPattern: { down_proj: 2 }, alphaPattern: { 'layers\\.1\\..*': 1 } }],
      ['gpt2', () => tinyGpt(), { r: 3, alpha: 5, targetModules: ['c_attn', 'c_fc'] }],
    ] as Array<[string, () => CausalLM, LoraSpec]>) {
      const { dir: base, model } = baseFolder(make, `${name}-base`);
      addLora(model, spec, { seed: 3 });
      moveAdapters(model, 4);
      const adapted = logitsOf(model);
      const dir = fresh(`${name}-adapter`);
      saveAdapter(dir, model, { baseModelNameOrPath: base });
      const onto = fromPretrained(base).model;
      loadAdapter(onto, dir);
      expect(Array.from(logitsOf(onto)), name).toEqual(Array.from(adapted));
      expect(Array.from(logitsOf(fromPretrained(dir).model)), name).toEqual(Array.from(adapted));
      const merged = fromPretrained(dir, { mergeAdapter: true }).model;
      expect(merged.lora).toBeNull();
      expect(maxRelError(logitsOf(merged), adapted), name).toBeLessThan(2e-5);
    }
  });

  it('a model computing interleaved RoPE (llama2.c) writes lora_B in transformers row order and reads it back', () => {
    const m = tinyLlama(true);
    addLora(m, { r: 2, alpha: 2, targetModules: ['q_proj', 'k_proj'] }, { seed: 5 });
    moveAdapters(m, 6);
    const dir = fresh('interleaved-adapter');
    saveAdapter(dir, m);
    const file = readSafetensors(join(dir, 'adapter_model.safetensors')).tensors.get('base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight')!.data as Float32Array;
    const mem = m.lora!.get('model.layers.0.self_attn.q_proj')!.B.data;
    // head width 4: memory rows (0, 1, 2, 3) are pairs (0,1), (2,3); transformers' order is (0, 2, 1, 3)
    expect(Array.from(file.subarray(2, 4))).toEqual(Array.from(mem.subarray(4, 6)));
    expect(Array.from(file.subarray(4, 6))).toEqual(Array.from(mem.subarray(2, 4)));
    const back = tinyLlama(true);
    loadAdapter(back, dir);
    expect(Array.from(logitsOf(back))).toEqual(Array.from(logitsOf(m)));
  });

  it('a reward model adapter loads with loadRewardModel (merged), and its score head', () => {
    const { dir: base, model } = baseFolder(() => tinyLlama(), 'rm-base');
    const rm = new RewardModel(model);
    addLora(model, { r: 2, alpha: 4, targetModules: 'all-linear' }, { seed: 8 });
    moveAdapters(model, 9);
    const ids = Int32Array.from([5, 9, 13, 2, 40]);
    const want = noGrad(() => rm.forward({ ids, B: 1, T: 5 }).item());
    const dir = fresh('rm-adapter');
    saveAdapter(dir, model, { heads: rm.head.namedParameters(), baseModelNameOrPath: base, files: { 'reward-normalization.json': '{"mean": 1, "std": 2}\n' } });
    const loaded = loadRewardModel(dir);
    expect(loaded.model.model.lora).toBeNull();
    expect(loaded.normalization).toEqual({ mean: 1, std: 2 });
    expect(noGrad(() => loaded.model.forward({ ids, B: 1, T: 5 }).item())).toBeCloseTo(want, 5);
    expect(() => fromPretrained(dir)).toThrow(/modules_to_save \["score"\].*a reward model adapter: load it with loadRewardModel/);
  });
});

describe('modules trained whole beside the adapters (modules_to_save)', () => {
  it('train with the adapters; the adapters off read their original weights; they load back onto a base and merge', () => {
    const model = tinyGpt();
    const base = fresh('gpt2-mts-base');
    savePretrained(model, base);
    const before = logitsOf(model);
    const wteBefore = model.param('wte.weight');
    addLora(model, { r: 2, alpha: 4, targetModules: ['c_attn'], modulesToSave: ['wte'] });
    expect(model.namedParameters().filter(([, t]) => t.requiresGrad).map(([n]) => n)).toEqual(['wte.weight', 'h.0.attn.c_attn.lora_A.weight', 'h.0.attn.c_attn.lora_B.weight', 'h.1.attn.c_attn.lora_A.weight', 'h.1.attn.c_attn.lora_B.weight']);
    moveAdapters(model, 3);
    const adapted = logitsOf(model);
    // off: the base, bit for bit (its original embedding, also as the tied head), with the trained one untouched
    expect(Array.from(withoutAdapters(model, () => logitsOf(model)))).toEqual(Array.from(before));
    expect(withoutAdapters(model, () => model.param('wte.weight'))).not.toBe(wteBefore);
    expect(model.param('wte.weight')).toBe(wteBefore);
    const dir = fresh('gpt2-mts');
    saveAdapter(dir, model, { baseModelNameOrPath: base });
    const loaded = fromPretrained(dir).model;
    expect(Array.from(logitsOf(loaded))).toEqual(Array.from(adapted));
    expect(Array.from(withoutAdapters(loaded, () => logitsOf(loaded)))).toEqual(Array.from(before));
    const merged = fromPretrained(dir, { mergeAdapter: true }).model;
    expect(merged.lora).toBeNull();
    expect(maxRelError(logitsOf(merged), adapted)).toBeLessThan(1e-5);
  });

  it('refuses a module that matches nothing, one LoRA adapts too, and a tied embedding saved without ensure_weight_tying', () => {
    expect(() => addLora(tinyGpt(), { r: 2, alpha: 2, modulesToSave: ['embed_tokens'] })).toThrow(/lora\.modulesToSave: 'embed_tokens' matches no module of this gpt2 model \(modules: wte, wpe, ln_1, c_proj, ln_2, c_fc, ln_f\)/);
    expect(() => addLora(tinyGpt(), { r: 2, alpha: 2, targetModules: ['c_attn'], modulesToSave: ['c_attn'] })).toThrow(/lora\.modulesToSave: 'c_attn' names h\.0\.attn\.c_attn, which LoRA adapts \(targetModules\): a module is adapted or trained whole, not both/);
    const g = tinyGpt();
    addLora(g, { r: 2, alpha: 2, targetModules: ['c_attn'], modulesToSave: ['wte'] });
    const dir = fresh('untied-copy');
    saveAdapter(dir, g);
    const path = join(dir, 'adapter_config.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), ensure_weight_tying: false }));
    const m = tinyGpt();
    expect(() => loadAdapter(m, dir)).toThrow(/modules_to_save holds the token embedding, to which this model's LM head is tied, and ensure_weight_tying is not true/);
    expect(m.lora).toBeNull();
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), ensure_weight_tying: 'yes' }));
    expect(() => loadAdapter(tinyGpt(), dir)).toThrow(/ensure_weight_tying must be true or false, got "yes"/);
  });
});

describe('bad adapters are refused, naming the problem', () => {
  /** A saved Llama adapter folder with its config edited. */
  function edited(edit: (c: Record<string, unknown>) => void, name: string): string {
    const m = tinyLlama();
    addLora(m, { r: 2, alpha: 2 });
    const dir = fresh(name);
    saveAdapter(dir, m);
    const path = join(dir, 'adapter_config.json');
    const c = JSON.parse(readFileSync(path, 'utf8'));
    edit(c);
    writeFileSync(path, JSON.stringify(c));
    return dir;
  }

  it.each([
    ['DoRA', (c: Record<string, unknown>) => (c.use_dora = true), /use_dora is true: DoRA \(weight-decomposed LoRA\) is not implemented/],
    ['another PEFT method', (c: Record<string, unknown>) => (c.peft_type = 'IA3'), /peft_type is "IA3": only LoRA adapters are read/],
    ['no peft_type', (c: Record<string, unknown>) => delete c.peft_type, /peft_type is missing/],
    ['a subset of layers', (c: Record<string, unknown>) => (c.layers_to_transform = [0]), /layers_to_transform is \[0\]: adapting a subset of layers/],
    ['LoRA biases', (c: Record<string, unknown>) => (c.lora_bias = true), /lora_bias is true: a bias on lora_B/],
    ['trained base biases', (c: Record<string, unknown>) => (c.bias = 'all'), /bias is "all": training the base model's biases/],
    ['PiSSA', (c: Record<string, unknown>) => (c.init_lora_weights = 'pissa'), /init_lora_weights is "pissa": this initialisation changes the base weights/],
    ['another task', (c: Record<string, unknown>) => (c.task_type = 'SEQ_2_SEQ_LM'), /task_type is "SEQ_2_SEQ_LM"/],
    ['r <= 0', (c: Record<string, unknown>) => (c.r = 0), /r must be a positive integer, got 0/],
    ['an unknown key', (c: Record<string, unknown>) => (c.lora_magic = 3), /lora_magic is not a LoraConfig key read here/],
    ['a target this base lacks', (c: Record<string, unknown>) => (c.target_modules = ['c_attn']), /adapter_config\.json: target_modules: 'c_attn' matches no module of this llama model/],
  ])('%s', (name, edit, message) => {
    const dir = edited(edit, name.replace(/\W+/g, '-'));
    const m = tinyLlama();
    const before = logitsOf(m);
    expect(() => loadAdapter(m, dir)).toThrow(message);
    // left as it was
    expect(m.lora).toBeNull();
    expect(m.namedParameters().every(([, t]) => t.requiresGrad)).toBe(true);
    expect(Array.from(logitsOf(m))).toEqual(Array.from(before));
  });

  it('weights that do not fit the base: other shapes, missing or unexpected tensors', () => {
    // an adapter trained on a wider model
    const wide = new Llama({ ...llamaConfig, hiddenSize: 24, numHeads: 4, numKvHeads: 2 }, { seed: 1 });
    addLora(wide, { r: 2, alpha: 2 });
    const dir = fresh('wide');
    saveAdapter(dir, wide);
    expect(() => loadAdapter(tinyLlama(), dir)).toThrow(/adapter_model\.safetensors: base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight: shape \[2, 24\] in the file, \[2, 16\] expected/);
    // one tensor gone, one DoRA magnitude added
    const m = tinyLlama();
    addLora(m, { r: 2, alpha: 2 });
    const d2 = fresh('edited-weights');
    saveAdapter(d2, m);
    const path = join(d2, 'adapter_model.safetensors');
    const sd = readSafetensors(path, { copy: true }).tensors;
    sd.delete('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight');
    writeSafetensors(path, sd);
    expect(() => loadAdapter(tinyLlama(), d2)).toThrow(/missing base_model\.model\.model\.layers\.1\.self_attn\.v_proj\.lora_B\.weight/);
    sd.set('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight', { dtype: 'F32', shape: [8, 2], data: new Float32Array(16) });
    sd.set('base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector', { dtype: 'F32', shape: [16], data: new Float32Array(16) });
    writeSafetensors(path, sd);
    expect(() => loadAdapter(tinyLlama(), d2)).toThrow(/unexpected tensor base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_magnitude_vector \(a DoRA magnitude/);
  });

  it('an adapter folder without a base it can find, or without weights', () => {
    const m = tinyLlama();
    addLora(m, { r: 2, alpha: 2 });
    const dir = fresh('no-base');
    saveAdapter(dir, m);
    expect(() => fromPretrained(dir)).toThrow(/names no base_model_name_or_path: pass the base model/);
    const d2 = fresh('hub-base');
    saveAdapter(d2, m, { baseModelNameOrPath: 'HuggingFaceTB/SmolLM2-135M' });
    expect(() => fromPretrained(d2)).toThrow(/the base model "HuggingFaceTB\/SmolLM2-135M" is not a folder or file here \(Hub ids are not downloaded\)/);
    rmSync(join(dir, 'adapter_model.safetensors'));
    expect(() => loadAdapter(tinyLlama(), dir)).toThrow(/no adapter_model\.safetensors/);
    expect(readAdapterConfig(d2).baseModelNameOrPath).toBe('HuggingFaceTB/SmolLM2-135M');
  });
});

// ---- against the independent PyTorch implementation of the LoRA forward (hf_reference.py) ----

const torch = torchAvailable();
const ci = !!process.env.CI && process.env.CI !== 'false';
if (!torch.ok && !ci) console.warn(`peft: SKIPPED the PyTorch comparison: ${torch.why} (run scripts/setup-python-torch.sh); under CI this fails`);

describe.skipIf(!torch.ok && !ci)('our adapters in the independent PyTorch LoRA forward (hf_reference.py)', () => {
  const PROMPTS = [[3, 17, 42, 5, 29], [11, 8, 50]];
  const cases: Array<[string, () => CausalLM, LoraSpec]> = [
    ['Llama, GQA, all-linear, rsLoRA, rank and alpha patterns', () => new Llama({ ...llamaConfig, modelType: 'qwen2', qkvBias: true }, { seed: 1 }), { r: 4, alpha: 6, targetModules: 'all-linear', useRslora: true, rankPattern: { 'layers\\.0\\.mlp\\.down_proj': 2 }, alphaPattern: { o_proj: 3 } }],
    ['GPT-2, c_attn and mlp.c_proj', () => tinyGpt(), { r: 3, alpha: 4, targetModules: ['c_attn', 'mlp.c_proj'] }],
    ['Llama computing interleaved RoPE, q/k/v', () => tinyLlama(true, 3), { r: 2, alpha: 2, targetModules: ['q_proj', 'k_proj', 'v_proj'] }],
    // modules_to_save of the model itself: the saved copy computes; a tied head follows its embedding (ensure_weight_tying)
    ['GPT-2, c_attn, its tied wte and ln_f trained whole', () => tinyGpt(), { r: 2, alpha: 4, targetModules: ['c_attn'], modulesToSave: ['wte', 'ln_f'] }],
    ['Llama with a tied head, q/v, embed_tokens trained whole', () => new Llama({ ...llamaConfig, tieWordEmbeddings: true }, { seed: 4 }), { r: 2, alpha: 2, targetModules: ['q_proj', 'v_proj'], modulesToSave: ['embed_tokens'] }],
    ['Llama, its own lm_head and final norm trained whole', () => tinyLlama(false, 5), { r: 2, alpha: 2, targetModules: ['o_proj'], modulesToSave: ['lm_head', 'norm'] }],
  ];

  it.each(cases)('%s', (name, make, spec) => {
    const model = make();
    spreadWeights(model, 7);
    const base = fresh('ref-base');
    savePretrained(model, base); // transformers' layout (the interleaved model's q/k rows permuted)
    addLora(model, spec, { seed: 8 });
    moveAdapters(model, 9, 1.2);
    const adapter = fresh('ref-adapter');
    saveAdapter(adapter, model, { baseModelNameOrPath: base });
    const [plain, adapted] = runReference([{ dir: base, prompts: PROMPTS, steps: 6 }, { dir: base, prompts: PROMPTS, steps: 6, adapter }]);
    const logprobs = (m: CausalLM, ids: number[]) => {
      const V = m.vocabSize, T = ids.length;
      const l = logitsOf(m, ids);
      return ids.slice(1).map((next, t) => {
        const row = Array.from(l.subarray(t * V, (t + 1) * V));
        const max = Math.max(...row);
        return row[next] - max - Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      }).slice(0, T - 1);
    };
    for (const [b, r] of adapted.entries()) {
      expect(Math.min(...r.margins), name).toBeGreaterThan(1e-3); // greedy decided by whole units, not rounding
      const ours = logprobs(model, r.ids);
      expect(Math.max(...ours.map((x, i) => Math.abs(x - r.logprobs[i]))), name).toBeLessThan(5e-5);
      // the adapter matters: the base model scores these tokens otherwise (here and in the reference)
      const baseLp = withoutAdapters(model, () => logprobs(model, r.ids));
      expect(Math.max(...baseLp.map((x, i) => Math.abs(x - r.logprobs[i]))), name).toBeGreaterThan(5e-3);
      if (plain[b].ids.every((t, j) => t === r.ids[j])) expect(Math.max(...plain[b].logprobs.map((x, i) => Math.abs(x - baseLp[i]))), name).toBeLessThan(5e-5);
    }
    // and the folder pair loads back here to the same model (the interleaved one now computing rotate_half on
    // permuted rows: the same function, rounded differently)
    expect(maxRelError(logitsOf(fromPretrained(adapter).model), logitsOf(model))).toBeLessThan(1e-5);
  });

  it.skipIf(!sharedDirForTests())('an adapter on stories260K (a llama2.c .bin) computes in the reference, on the base saved as HF, what it computes here', () => {
    const bin = sharedPath('models/stories260K/stories260K.bin');
    const m = fromPretrained(bin).model;
    addLora(m, { r: 4, alpha: 8, targetModules: 'all-linear' }, { seed: 1 });
    moveAdapters(m, 2, 0.3);
    const base = fresh('stories-hf');
    savePretrained(fromPretrained(bin).model, base);
    const adapter = fresh('stories-adapter');
    saveAdapter(adapter, m, { baseModelNameOrPath: bin });
    expect(existsSync(join(adapter, 'adapter_config.json'))).toBe(true);
    const [[r]] = runReference([{ dir: base, prompts: [[1, 403, 407, 261]], steps: 8, adapter }]);
    const V = m.vocabSize;
    const l = logitsOf(m, r.ids);
    const ours = r.ids.slice(1).map((next, t) => {
      const row = Array.from(l.subarray(t * V, (t + 1) * V));
      const max = Math.max(...row);
      return row[next] - max - Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    });
    expect(Math.max(...ours.map((x, i) => Math.abs(x - r.logprobs[i])))).toBeLessThan(5e-5);
    // the adapter's base_model_name_or_path is the .bin: it loads here onto it (interleaved rows restored)
    expect(Array.from(logitsOf(fromPretrained(adapter).model, r.ids))).toEqual(Array.from(l));
  });
});
