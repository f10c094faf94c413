// A one-node ONNX model, Y[m,n] = X[m,k] · W[k,n] with W a constant initializer (as in a real
// exported encoder), written as protobuf bytes by a minimal encoder: the ONNX schema fields used
// here are few and stable, and onnxruntime-web takes the bytes directly. Browser-safe.

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const ONNX_FLOAT = 1;
const IR_VERSION = 8;
const OPSET = 17;

class ProtoWriter {
  private readonly parts: number[] = [];

  private varint(value: number): void {
    // Values here are small non-negative integers (< 2^53).
    while (value >= 0x80) {
      this.parts.push((value % 0x80) | 0x80);
      value = Math.floor(value / 0x80);
    }
    this.parts.push(value);
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  int(field: number, value: number): this {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  bytes(field: number, value: Uint8Array | number[]): this {
    this.tag(field, WIRE_BYTES);
    this.varint(value.length);
    for (const byte of value) this.parts.push(byte);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, build: (writer: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** ValueInfoProto for a float tensor of a fixed shape. */
function tensorValueInfo(writer: ProtoWriter, name: string, shape: number[]): void {
  writer.string(1, name).message(2, (type) =>
    type.message(1, (tensor) =>
      tensor.int(1, ONNX_FLOAT).message(2, (dims) => {
        for (const dim of shape) dims.message(1, (d) => d.int(1, dim));
      }),
    ),
  );
}

/** Seeded uniform values in [-1, 1): the same weights in every run and engine. */
export function seededValues(length: number, seed: number): Float32Array {
  const values = new Float32Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    values[i] = ((state >>> 0) / 2 ** 32) * 2 - 1;
  }
  return values;
}

/** The model's bytes; its input is 'x' [m,k] and its output 'y' [m,n]. */
export function matmulModel(m: number, k: number, n: number, seed = 1): Uint8Array {
  const weights = seededValues(k * n, seed);
  const raw = new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength);
  return new ProtoWriter()
    .int(1, IR_VERSION)
    .string(2, 'murmur-bench')
    .message(7, (graph) => {
      graph.message(1, (node) => node.string(1, 'x').string(1, 'w').string(2, 'y').string(3, 'matmul').string(4, 'MatMul'));
      graph.string(2, `matmul_${m}x${k}x${n}`);
      graph.message(5, (tensor) => {
        tensor.int(1, k).int(1, n).int(2, ONNX_FLOAT).string(8, 'w').bytes(9, raw);
      });
      graph.message(11, (input) => tensorValueInfo(input, 'x', [m, k]));
      graph.message(12, (output) => tensorValueInfo(output, 'y', [m, n]));
    })
    .message(8, (opset) => opset.string(1, '').int(2, OPSET))
    .finish();
}
