/**
 * Seeded random weights for a Whisper model of any dims: real tensor names and shapes (in
 * weightSlots order), scaled so the network stays numerically healthy — layer-norm gains near 1,
 * small biases, linear weights ~ N(0, 1/fan_in), the encoder's real sinusoidal positions — so
 * activations and logits stay finite and of ordinary size through every layer.
 * The same dims and seed give the same values, bit for bit, on every platform.
 */
import type { WhisperDims } from '../../src/core/model/dims.ts';
import { encodeTensor } from '../../src/core/model/dtype.ts';
import { assembleWeights, weightSlots } from '../../src/core/model/weights.ts';
import type { WeightDType, WhisperWeights } from '../../src/core/model/weights.ts';
import { ggmlTensorDType } from './ggml-writer.ts';

export interface SyntheticTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

/** xoshiro128** seeded through splitmix32: 32-bit integer arithmetic only, so it is exact everywhere. */
export function createRandom(seed: number): { uniform(): number; normal(): number } {
  let splitState = seed >>> 0;
  const splitmix = () => {
    splitState = (splitState + 0x9e3779b9) >>> 0;
    let z = splitState;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let s0 = splitmix();
  let s1 = splitmix();
  let s2 = splitmix();
  let s3 = splitmix();
  const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));
  const next = () => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  // In (0, 1), never 0, so the logarithm below is finite.
  const uniform = () => (next() + 0.5) / 4294967296;
  let spare: number | undefined;
  const normal = () => {
    if (spare !== undefined) {
      const value = spare;
      spare = undefined;
      return value;
    }
    // Box–Muller: two independent normals per pair of uniforms.
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
  return { uniform, normal };
}

/** Whisper's fixed encoder positions: [sin | cos] of position × geometric timescales up to 10000. */
export function sinusoids(length: number, channels: number): Float32Array {
  const half = channels / 2;
  const increment = Math.log(10000) / (half - 1);
  const out = new Float32Array(length * channels);
  for (let t = 0; t < length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t * Math.exp(-increment * i);
      out[t * channels + i] = Math.sin(angle);
      out[t * channels + half + i] = Math.cos(angle);
    }
  }
  return out;
}

const BIAS_SCALE = 0.02;
const GAIN_SPREAD = 0.05;
const TOKEN_EMBEDDING_SCALE = 0.02;
const DECODER_POSITION_SCALE = 0.01;

export function syntheticTensors(dims: WhisperDims, seed: number): SyntheticTensor[] {
  const random = createRandom(seed);
  const fill = (count: number, value: () => number) => {
    const values = new Float32Array(count);
    for (let i = 0; i < count; i++) values[i] = value();
    return values;
  };
  return weightSlots(dims).map(({ name, shape }) => {
    const count = shape.reduce((a, b) => a * b, 1);
    const normal = (scale: number, mean = 0) => fill(count, () => mean + scale * random.normal());
    let values: Float32Array;
    if (name === 'encoder.positional_embedding') values = sinusoids(shape[0]!, shape[1]!);
    else if (name === 'decoder.positional_embedding') values = normal(DECODER_POSITION_SCALE);
    else if (name === 'decoder.token_embedding.weight') values = normal(TOKEN_EMBEDDING_SCALE);
    else if (/(_ln|ln_post|decoder\.ln)\.weight$/.test(name)) values = normal(GAIN_SPREAD, 1);
    else if (name.endsWith('.bias')) values = normal(BIAS_SCALE);
    else {
      // Linear [out, in] and conv [out, in, kernel]: unit-variance outputs for unit-variance inputs.
      const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
      values = normal(1 / Math.sqrt(fanIn));
    }
    return { name, shape: [...shape], values };
  });
}

/**
 * Synthetic weights in memory, in the one schema, without any file format in between. Each tensor
 * gets the dtype a file of `dtype` would give it: for bf16 every tensor (as a Hugging Face
 * export), otherwise whisper.cpp's choice per tensor (vectors f32, quantized matrices, f16 convs).
 */
export function syntheticWeights(dims: WhisperDims, seed: number, dtype: WeightDType = 'f32'): WhisperWeights {
  const byName = new Map(syntheticTensors(dims, seed).map((t) => [t.name, t]));
  return assembleWeights(dims, (slot) => {
    const { values, shape, name } = byName.get(slot.name)!;
    return encodeTensor(values, shape, dtype === 'bf16' ? 'bf16' : ggmlTensorDType(name, shape, dtype));
  });
}
