// A tiny ONNX model builder: just enough protobuf (varints, length-delimited fields, packed repeats) to
// write a ModelProto in memory for onnxruntime-node, with no dependency. Field numbers are those of
// onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto).
//
//   import { onnxModel, node, valueInfo, tensor, DataType } from './onnx.mjs';
//   const bytes = onnxModel({
//     opset: 13,
//     inputs: [valueInfo('A', DataType.FLOAT, [m, k]), valueInfo('B', DataType.FLOAT, [k, n])],
//     outputs: [valueInfo('C', DataType.FLOAT, [m, n])],
//     nodes: [node('MatMul', ['A', 'B'], ['C'])],
//   });
//   const session = await ort.InferenceSession.create(bytes);
//
// Attributes are given as a plain object and typed from their JS value: an integer number -> INT, a
// non-integer number -> FLOAT (use { float: 1 } to force FLOAT for a whole number), a string -> STRING,
// an array of integers -> INTS, { floats: [...] } -> FLOATS, { tensor: tensor(...) } -> TENSOR.
// Example: node('Attention', ['Q', 'K', 'V'], ['Y'], { is_causal: 1, scale: { float: 0.125 } }) at opset 23.

/** TensorProto.DataType */
export const DataType = Object.freeze({
  FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, INT64: 7, STRING: 8, BOOL: 9, FLOAT16: 10,
  DOUBLE: 11, UINT32: 12, UINT64: 13, BFLOAT16: 16,
});

/** AttributeProto.AttributeType */
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 };

// ---- protobuf wire format ----
class Writer {
  bytes = [];
  varint(v) {
    // int64 values as BigInt so that negative numbers take their 10-byte two's-complement form.
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x));
    return this;
  }
  tag(field, wire) {
    return this.varint((field << 3) | wire);
  }
  int(field, v) {
    return this.tag(field, 0).varint(v);
  }
  float(field, v) {
    this.tag(field, 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.bytes.push(...b);
    return this;
  }
  raw(field, u8) {
    this.tag(field, 2).varint(u8.length);
    for (let i = 0; i < u8.length; i++) this.bytes.push(u8[i]);
    return this;
  }
  string(field, s) {
    return this.raw(field, new TextEncoder().encode(s));
  }
  message(field, w) {
    return this.raw(field, w.finish());
  }
  packedInts(field, values) {
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    return this.raw(field, inner.finish());
  }
  packedFloats(field, values) {
    return this.raw(field, new Uint8Array(new Float32Array(values).buffer));
  }
  finish() {
    return Uint8Array.from(this.bytes);
  }
}

// ---- ONNX messages (each returns a Writer holding the message's fields) ----

/** TensorProto: an initializer or a TENSOR attribute. `data` is a typed array matching dataType. */
export function tensor(name, dataType, dims, data) {
  const w = new Writer();
  for (const d of dims) w.int(1, d);
  w.int(2, dataType);
  w.string(8, name);
  if (data) w.raw(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)); // raw_data, little-endian
  return w;
}

/** ValueInfoProto for a graph input/output; a dim may be a number or a symbolic name (string). */
export function valueInfo(name, elemType, dims) {
  const shape = new Writer();
  for (const d of dims) {
    const dim = new Writer();
    if (typeof d === 'string') dim.string(2, d);
    else dim.int(1, d);
    shape.message(1, dim);
  }
  const tt = new Writer().int(1, elemType).message(2, shape); // TypeProto.Tensor
  const type = new Writer().message(1, tt); // TypeProto
  return new Writer().string(1, name).message(2, type);
}

function attribute(name, value) {
  const w = new Writer().string(1, name);
  if (typeof value === 'number') {
    if (Number.isInteger(value)) w.int(3, value).int(20, AttrType.INT);
    else w.float(2, value).int(20, AttrType.FLOAT);
  } else if (typeof value === 'bigint') {
    w.int(3, value).int(20, AttrType.INT);
  } else if (typeof value === 'string') {
    w.string(4, value).int(20, AttrType.STRING);
  } else if (Array.isArray(value)) {
    if (value.every((v) => typeof v === 'string')) {
      for (const s of value) w.string(9, s);
      w.int(20, AttrType.STRINGS);
    } else {
      w.packedInts(8, value).int(20, AttrType.INTS);
    }
  } else if (value && typeof value === 'object' && 'float' in value) {
    w.float(2, value.float).int(20, AttrType.FLOAT);
  } else if (value && typeof value === 'object' && 'floats' in value) {
    w.packedFloats(7, value.floats).int(20, AttrType.FLOATS);
  } else if (value && typeof value === 'object' && 'tensor' in value) {
    w.message(5, value.tensor).int(20, AttrType.TENSOR);
  } else {
    throw new TypeError(`onnx: attribute '${name}' has an unsupported value ${String(value)}`);
  }
  return w;
}

/** NodeProto. An empty string in `inputs` stands for an omitted optional input. */
export function node(opType, inputs, outputs, attributes = {}, { name = '', domain = '' } = {}) {
  const w = new Writer();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  if (name) w.string(3, name);
  w.string(4, opType);
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) w.message(5, attribute(k, v));
  if (domain) w.string(7, domain);
  return w;
}

/**
 * ModelProto bytes. opset: the default-domain opset version (23 has `Attention`); irVersion defaults to what
 * that opset needs (IR 11 for opset 23, IR 10 for 21-22, IR 8 below).
 */
export function onnxModel({ nodes, inputs, outputs, initializers = [], opset = 17, irVersion, name = 'bench' }) {
  const ir = irVersion ?? (opset >= 23 ? 11 : opset >= 21 ? 10 : 8);
  const graph = new Writer();
  for (const n of nodes) graph.message(1, n);
  graph.string(2, name);
  for (const t of initializers) graph.message(5, t);
  for (const i of inputs) graph.message(11, i);
  for (const o of outputs) graph.message(12, o);
  const opsetId = new Writer().string(1, '').int(2, opset);
  return new Writer().int(1, ir).string(2, 'rlhf-ts-bench').message(7, graph).message(8, opsetId).finish();
}
