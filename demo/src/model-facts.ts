/**
 * What the execution plan wants to know about a model that the transcriber does not report: the
 * weights' storage type and size, read off the files the page handed over.
 */
import type { PlannedModel } from '../../src/core/device/plan.ts';

export type WeightFacts = Omit<PlannedModel, 'dims'>;

/** ggml names carry the type (ggml-tiny.en-q8_0.bin); a folder's config.json carries torch_dtype. */
const TYPE_IN_NAME = /(?:^|[-_.])(q\d_[01k]|f16|f32)(?=[-_.])/i;

export async function weightFacts(files: Record<string, Blob> | File[]): Promise<WeightFacts> {
  const named = Array.isArray(files) ? files.map((file) => [file.name, file] as const) : Object.entries(files);
  if (named.length === 0) return {};
  // The weights are by far the largest file.
  const [name, weights] = named.reduce((largest, entry) => (entry[1].size > largest[1].size ? entry : largest));
  const facts: WeightFacts = { bytes: weights.size };
  const fromName = TYPE_IN_NAME.exec(name)?.[1];
  if (fromName) return { ...facts, dtype: fromName.toLowerCase() };
  const config = named.find(([file]) => file.endsWith('config.json') && !file.endsWith('generation_config.json') && !file.endsWith('preprocessor_config.json'))?.[1];
  if (!config) return facts;
  try {
    const dtype = (JSON.parse(await config.text()) as { torch_dtype?: unknown }).torch_dtype;
    return typeof dtype === 'string' ? { ...facts, dtype: dtype === 'float32' ? 'f32' : dtype } : facts;
  } catch {
    return facts;
  }
}
