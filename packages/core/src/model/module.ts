/**
 * A container of named parameters (Hugging Face names) with the bookkeeping every model and head shares:
 * listing, counting, freezing, state dicts in the io/ format, and copying.
 */
import { adviseHugePages, kernels } from '../backend/cpu';
import type { StateDict, TensorEntry } from '../io/dtypes';
import { isGradEnabled } from '../tensor/autograd';
import { loraLinear } from '../tensor/lora-linear';
import { linear, residualLinear } from '../tensor/ops';
import { uploadInto, type DeviceBuffer } from '../backend/device';
import { CpuStorage, Tensor, type Device } from '../tensor/tensor';
import type { LoraAdapters } from './lora';

/**
 * A module's parameters by name. With LoRA adapters that train some modules whole (modules_to_save), get() of one
 * of theirs while the adapters are off gives the base's original tensor: every read of a weight in a forward goes
 * through get(), so the adapters-off model is the base without a copy of anything else.
 */
class ParamMap extends Map<string, Tensor> {
  adapters: LoraAdapters | null = null;

  override get(name: string): Tensor | undefined {
    return this.adapters?.originalOf(name) ?? super.get(name);
  }
}

export abstract class Module {
  protected readonly params: Map<string, Tensor> = new ParamMap();
  /** models: recompute each block in the backward instead of keeping its activations (model/blocks.ts) */
  gradientCheckpointing = false;
  /** names of the linear projections (`${name}.weight`, optional `${name}.bias`), in declaration order */
  private readonly linears: string[] = [];
  /** LoRA adapters on some of the projections (model/lora.ts), or null */
  private adapters: LoraAdapters | null = null;

  protected addParam(name: string, t: Tensor): Tensor {
    if (this.params.has(name)) throw new Error(`parameter ${name} declared twice`);
    t.requiresGrad = true;
    t.name = name;
    this.params.set(name, t);
    return t;
  }

  /**
   * A linear projection through proj(): its weight (out, in) and, when given, its bias (out), under
   * `${name}.weight` / `${name}.bias`. These are the projections a LoRA adapter may target.
   */
  protected addLinear(name: string, weight: Tensor, bias?: Tensor): Tensor {
    this.addParam(`${name}.weight`, weight);
    if (bias) this.addParam(`${name}.bias`, bias);
    this.linears.push(name);
    return weight;
  }

  /** The linear projections (parameter names without `.weight`), in declaration order: what LoRA may target. */
  linearNames(): string[] {
    return [...this.linears];
  }

  /**
   * The name of a projection as a module of the transformers class (`named_modules()` of LlamaForCausalLM,
   * GPT2LMHeadModel, ...): what PEFT's target_modules are matched against and its adapter keys are built from.
   */
  moduleKey(name: string): string {
    return name;
  }

  /** The LoRA adapters on this module's projections, or null (model/lora.ts adds and removes them). */
  get lora(): LoraAdapters | null {
    return this.adapters;
  }

  /** Installs (or, with null, removes) a set of adapters; they must fit the projections (model/lora.ts checks). */
  setLora(adapters: LoraAdapters | null): void {
    this.adapters = adapters;
    if (this.params instanceof ParamMap) this.params.adapters = adapters;
  }

  /**
   * [name, tensor] pairs in declaration order (tied weights appear once), then the LoRA adapters' factors
   * (`${projection}.lora_A.weight` (r, in), `.lora_B.weight` (out, r)) when there are any. With the adapters off, a
   * module trained whole beside them is its original tensor.
   */
  namedParameters(): Array<[string, Tensor]> {
    if (!this.adapters) return [...this.params.entries()];
    const own = [...this.params.keys()].map((n): [string, Tensor] => [n, this.params.get(n)!]);
    return [...own, ...this.adapters.namedParameters()];
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /**
   * The one linear projection every layer of a model goes through: y = x·Wᵀ + b with W = `${name}.weight`
   * (out, in) and b = `${name}.bias` when the module has one; plus `residual` when given, fused into the GEMM
   * (residual + x·Wᵀ + b in one pass over the stream). x (N, in) -> (N, out). A projection with an enabled LoRA
   * adapter runs the fused loraLinear op instead (base + low-rank path in one op; its dropout only while
   * recording a graph: never in generation, scoring or a reference's forward); W may be bf16 (keepFrozenInBf16).
   */
  protected proj(x: Tensor, name: string, residual?: Tensor): Tensor {
    const W = this.params.get(`${name}.weight`);
    if (!W) throw new Error(`no parameter named ${name}.weight`);
    const b = this.params.get(`${name}.bias`) ?? null;
    const a = this.adapters?.active(name);
    if (a) {
      const dropout = a.dropout > 0 && (isGradEnabled() || this.adapters!.dropoutWithoutGraph) ? { p: a.dropout, rng: this.adapters!.dropoutRng } : null;
      return loraLinear(x, W, b, a.A, a.B, a.scaling, residual ?? null, dropout);
    }
    return residual ? residualLinear(residual, x, W, b) : linear(x, W, b);
  }

  /**
   * The parameters whose names start with `prefix` (a block's: `model.layers.3.`), in declaration order, the LoRA
   * adapters' factors of its projections last (checkpoint() must see them: with LoRA they alone need a gradient).
   */
  protected parametersUnder(prefix: string): Tensor[] {
    const out: Tensor[] = [];
    for (const [n, t] of this.namedParameters()) if (n.startsWith(prefix)) out.push(t);
    return out;
  }

  /**
   * Folds every LoRA adapter into its base weight, W (out, in) += s · B · A, and removes the adapters: the plain
   * model that computes what the adapted one did (up to float32 rounding). A bf16 base weight is widened to f32
   * first (the merged weight is not bf16-representable); the merged weights keep the base's requiresGrad.
   */
  mergeLora(): void {
    const adapters = this.adapters;
    if (!adapters) throw new Error('mergeLora: this model has no LoRA adapter');
    for (const a of adapters.list()) {
      const key = `${a.name}.weight`;
      let W = this.params.get(key)!;
      if (W.dtype === 'bf16') {
        W = W.toF32();
        W.name = key;
        this.params.set(key, W);
      }
      const [out, inp] = W.shape;
      // W (out, in) += s · B (out, r) · A (r, in): a GEMM into the weight (beta 1)
      kernels().gemm(W.data, a.B.data, a.A.data, out, inp, a.A.shape[0], false, false, a.scaling, 1);
    }
    this.setLora(null);
  }

  /**
   * Moves every parameter to `device` (each one counted upload, or a download back to the cpu), keeping its name
   * and requiresGrad; a parameter already there stays. Call it before making an optimizer (AdamW lays out the
   * parameters where they are). LoRA adapters move with it (their factors and the originals of the modules they
   * train whole).
   */
  to(device: Device): this {
    if (this.adapters) this.setLora(this.adapters.to(device));
    for (const [name, t] of [...this.params.entries()]) {
      if (t.device === device) continue;
      const d = t.to(device);
      d.requiresGrad = t.requiresGrad;
      d.name = name;
      this.params.set(name, d);
    }
    return this;
  }

  /** @internal parameter `name` becomes t (same size; name and requiresGrad kept): copyParameters from a device */
  replaceParameter(name: string, t: Tensor): void {
    const old = this.params.get(name);
    if (!old || old.size !== t.size) throw new Error(`replaceParameter: no parameter ${name} of ${t.size} elements`);
    t.name = name;
    t.requiresGrad = old.requiresGrad && t.dtype === 'f32';
    this.params.set(name, t);
  }

  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`no parameter named ${name}`);
    return t;
  }

  /** Number of scalar parameters, adapters included (only those that require grad when trainableOnly). */
  numParameters(opts: { trainableOnly?: boolean } = {}): number {
    let n = 0;
    for (const [, t] of this.namedParameters()) if (!opts.trainableOnly || t.requiresGrad) n += t.size;
    return n;
  }

  /** Stops gradients for the parameters whose name matches (all when no filter; adapters included). */
  freeze(filter: (name: string) => boolean = () => true): this {
    for (const [n, t] of this.namedParameters()) if (filter(n)) t.requiresGrad = false;
    return this;
  }

  unfreeze(filter: (name: string) => boolean = () => true): this {
    for (const [n, t] of this.namedParameters()) if (filter(n)) t.requiresGrad = true;
    return this;
  }

  /**
   * Keeps the frozen weight matrices in bf16: every 2-D parameter that does not require grad (projections,
   * embeddings, the LM head) is replaced by a bf16 copy (rounded to nearest even), halving its memory; norms
   * and biases stay f32. For a reference model, a reward model used only to score, a base under adapters:
   * the ops that read weights take bf16 directly (ops.weightGemm; see @rlhf/native gemmBf16 for the rounding
   * of the AVX512_BF16 path). Freeze first (`freeze()`); a bf16 weight can never require grad again. Returns
   * the number of parameters converted. stateDict() gives them back widened (dtype BF16), loadStateDict()
   * rounds what it loads into them, and copies of the module (clone) are f32 again.
   */
  keepFrozenInBf16(): number {
    let n = 0;
    for (const [name, t] of this.params) {
      if (t.requiresGrad || t.ndim !== 2 || t.dtype !== 'f32') continue;
      const b = t.toBf16();
      b.name = name;
      this.params.set(name, b);
      n++;
    }
    return n;
  }

  /**
   * A frozen copy of this module whose weight matrices are bf16 and whose other parameters are f32 copies,
   * made without a float32 copy of the matrices (clone() then keepFrozenInBf16() would hold the whole model
   * in float32 once more, for a while: 2 GB at 0.5B). The copy shares the module's other fields (its config
   * and derived constant tables: read-only), only the parameters are its own.
   */
  frozenBf16Copy(): this {
    if (this.adapters) {
      throw new Error('frozenBf16Copy: this model has LoRA adapters: its reference is the base under them (adaptersDisabled, no copy), or merge them first (mergeLora)');
    }
    const copy = Object.assign(Object.create(Object.getPrototypeOf(this)) as this, this);
    const params = new Map<string, Tensor>();
    for (const [name, t] of this.params) {
      const c = t.ndim === 2 ? t.toBf16() : t.clone();
      c.name = name;
      params.set(name, c);
    }
    Object.defineProperty(copy, 'params', { value: params });
    return copy;
  }

  /** Bytes the parameters take in memory (tied weights once; adapters included). */
  parameterBytes(): number {
    let n = 0;
    for (const [, t] of this.namedParameters()) n += t.size * (t.dtype === 'bf16' ? 2 : 4);
    return n;
  }

  /** Sets every parameter gradient to zero (keeps the buffers, so no allocation). */
  zeroGrad(): void {
    for (const [, t] of this.namedParameters()) if (t.grad) t.grad.data.fill(0);
  }

  /** Internal layout -> file layout for one parameter (GPT-2 transposes its Conv1D weights). */
  protected toFile(_name: string, t: Tensor): { shape: number[]; data: Float32Array } {
    return { shape: [...t.shape], data: t.data.slice() };
  }

  /** File layout -> internal layout, written into the parameter. */
  protected fromFile(name: string, entry: TensorEntry, t: Tensor): void {
    checkEntry(name, entry, [...t.shape]);
    t.data.set(entry.data as Float32Array);
  }

  /** File name of a parameter (models add prefixes here). */
  protected fileName(name: string): string {
    return name;
  }

  /** Parameter name for a file name, or null when the file tensor is not a parameter (ignored buffers). */
  protected paramName(fileName: string): string | null {
    return this.params.has(fileName) ? fileName : null;
  }

  /**
   * Tensors with their Hugging Face names and layouts, as F32 (copies): the base model's (LoRA adapters are
   * saved in PEFT's layout by model/peft.ts; mergeLora() first to save an adapted model as a plain one).
   */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [n, t] of this.params) {
      // a device's parameter comes to the host first (one counted download each)
      const { shape, data } = this.toFile(n, t.to('cpu').toF32()); // a bf16 weight widened (exact)
      sd.set(this.fileName(n), { dtype: t.dtype === 'bf16' ? 'BF16' : 'F32', shape, data });
    }
    return sd;
  }

  /**
   * Loads tensors by Hugging Face name. strict (default): every parameter must be present and every file
   * tensor must be known or ignorable (model-specific buffers); shapes must match. Every tensor is checked
   * (name, dtype, shape, finite values) before any parameter is written, so a bad state dict leaves the
   * module as it was.
   */
  loadStateDict(sd: StateDict, opts: { strict?: boolean } = {}): void {
    const strict = opts.strict ?? true;
    const seen = new Set<string>();
    const todo: Array<[string, TensorEntry, Tensor]> = [];
    for (const [fname, entry] of sd) {
      const name = this.paramName(fname);
      if (name === null) {
        if (strict && !this.ignorable(fname)) throw new Error(`loadStateDict: unexpected tensor ${fname}`);
        continue;
      }
      if (seen.has(name)) throw new Error(`loadStateDict: tensor ${fname} is given twice (as parameter ${name})`);
      const t = this.params.get(name)!;
      checkEntry(fname, entry, this.fileShape(name, t));
      checkFinite(fname, entry);
      todo.push([name, entry, t]);
      seen.add(name);
    }
    if (strict) {
      const missing = [...this.params.keys()].filter((n) => !seen.has(n));
      if (missing.length) throw new Error(`loadStateDict: missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`);
    }
    for (const [name, entry, t] of todo) {
      if (t.device !== 'cpu') {
        // a device's parameter: read into a host copy in the model's layout, then one counted upload into place
        const f = Tensor.zeros(t.shape);
        this.fromFile(name, entry, f);
        if (t.dtype === 'bf16') uploadInto(t.device, t.bufBf16 as DeviceBuffer, f.toBf16().dataBf16, 'tensor');
        else uploadInto(t.device, t.buf as DeviceBuffer, f.data, 'tensor');
        continue;
      }
      if (t.dtype !== 'bf16') {
        this.fromFile(name, entry, t);
        continue;
      }
      // a weight kept in bf16: read as f32 (the model's layout), then rounded into place
      const f = Tensor.zeros(t.shape);
      this.fromFile(name, entry, f);
      t.dataBf16.set(f.toBf16().dataBf16);
    }
  }

  /** The shape a parameter has in files (GPT-2's Conv1D weights are stored transposed). */
  protected fileShape(_name: string, t: Tensor): number[] {
    return [...t.shape];
  }

  /** File tensors that are not parameters but may appear in checkpoints (e.g. GPT-2's attn.bias masks). */
  protected ignorable(_fileName: string): boolean {
    return false;
  }
}

export function checkEntry(name: string, entry: TensorEntry, shape: number[]): void {
  if (!(entry.data instanceof Float32Array)) throw new TypeError(`${name}: expected float data (F32/F16/BF16), got ${entry.dtype}`);
  if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
    throw new RangeError(`${name}: shape [${entry.shape.join(', ')}] in the file, [${shape.join(', ')}] expected`);
  }
}

/**
 * A tied model ignores an `lm_head.weight` in the file (some tools write the shared matrix twice). That is only
 * right when it IS the embedding: a different head would be dropped silently, so refuse it, naming both tensors.
 * `why` says why the model is tied (which config field).
 */
export function checkTiedHead(sd: StateDict, head: string, embed: string, why: string): void {
  const h = sd.get(head);
  const e = sd.get(embed);
  if (!h || !e || h === e || h.data === e.data) return;
  const same =
    h.shape.length === e.shape.length &&
    h.shape.every((d, i) => d === e.shape[i]) &&
    // values read from different dtypes cannot be compared bit for bit: then the shape is all we check
    (h.dtype !== e.dtype || (h.data.length === e.data.length && h.data.every((x, i) => Object.is(x, e.data[i]))));
  if (!same) throw new Error(`loadStateDict: ${head} differs from ${embed}, but ${why}: the file's ${head} would be ignored`);
}

/** Refuses float data holding NaN or ±Infinity (a corrupt or diverged checkpoint), naming the tensor and the index. */
export function checkFinite(name: string, entry: TensorEntry): void {
  const d = entry.data;
  if (!(d instanceof Float32Array)) return;
  for (let i = 0; i < d.length; i++) {
    // x - x is 0 for every finite x and NaN for NaN and ±Infinity: one test per element
    if (d[i] - d[i] !== 0) throw new RangeError(`${name}: value ${d[i]} at index ${i} is not finite (corrupt or diverged weights)`);
  }
}

/**
 * Copies parameter values from one module to another of the same architecture (names must match); the source's
 * LoRA adapters, when it has any, are copied onto the destination (which must have none).
 */
export function copyParameters(dst: Module, src: Module): void {
  if (src.lora && dst.lora) throw new Error('copyParameters: the destination already has LoRA adapters');
  const s = new Map(src.namedParameters());
  for (const [n, t] of dst.namedParameters()) {
    const from = s.get(n);
    if (!from || from.size !== t.size) throw new Error(`copyParameters: ${n} is missing or has another size in the source`);
    if (from.device !== t.device) {
      // a source on a device (a clone of a model there): the destination's parameter becomes a copy made there by a
      // kernel, in its dtype, requiresGrad kept (no host transfer)
      if (t.device !== 'cpu') throw new Error(`copyParameters: ${n} is on ${from.device} in the source and on ${t.device} in the destination`);
      dst.replaceParameter(n, t.dtype === 'bf16' ? from.toBf16() : from.dtype === 'bf16' ? from.to('cpu').toF32().to(from.device) : from.clone());
      continue;
    }
    if (t.dtype === 'bf16') t.dataBf16.set(from.toBf16().dataBf16);
    else t.data.set(from.toF32().data); // a bf16 source widened
  }
  if (src.lora) dst.setLora(src.lora.clone());
}

/**
 * Moves the float32 parameters of `module` under 16 MiB that own their whole storage (on the CPU) into one
 * buffer, each into its own slice, values kept, tensors the same objects: the buffer is advised onto huge pages
 * before it is written (backend/cpu adviseHugePages), so that a decode step, which streams every weight, takes a
 * TLB miss per 2 MiB instead of per 4 KiB; as separate allocations, matrices under a few MiB cannot be on huge
 * pages at all. Larger ones stay where they are (most of each is whole huge pages, which the decoder collapses),
 * which bounds what loading holds twice while the old arrays await the GC (Qwen2.5-0.5B: ~180 MB of attention
 * matrices, not its 2 GB). fromPretrained calls it after loading; not for a module whose parameters an optimizer
 * already holds (AdamW moves them into its own flat buffer, advised the same way). Returns the floats moved.
 */
const PACK_BELOW_BYTES = 16 << 20;

export function packParameters(module: { namedParameters(): Array<[string, Tensor]> }): number {
  const owners: CpuStorage[] = [];
  const seen = new Set<CpuStorage>();
  for (const [, t] of module.namedParameters()) {
    const s = t.storage;
    if (!(s instanceof CpuStorage) || seen.has(s) || s.pooled || s.released || s.dtype !== 'f32' || t.offset !== 0 || t.size !== s.length) continue;
    if (s.length * 4 >= PACK_BELOW_BYTES) continue;
    seen.add(s);
    owners.push(s);
  }
  const total = owners.reduce((n, s) => n + s.length, 0);
  if (total * 4 < 4 << 20) return 0; // under two huge pages: nothing to gain
  const arena = new Float32Array(total);
  adviseHugePages(arena);
  let at = 0;
  for (const s of owners) {
    s.moveTo(arena.subarray(at, at + s.length));
    at += s.length;
  }
  return total;
}

