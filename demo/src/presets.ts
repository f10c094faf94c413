/** The models the model manager offers: Whisper checkpoints on the Hugging Face hub. */
export interface ModelPreset {
  /** What locateModel takes: a hub repo id, or `repo:file` for one ggml file in a repo. */
  source: string;
  label: string;
  /** Approximate download size, for the picker. */
  megabytes: number;
  englishOnly: boolean;
}

const SIZES: { name: string; english: boolean; f32: number; f16: number; q8: number; quant?: string }[] = [
  { name: 'tiny', english: true, f32: 151, f16: 78, q8: 44 },
  { name: 'base', english: true, f32: 290, f16: 148, q8: 82 },
  { name: 'small', english: true, f32: 967, f16: 488, q8: 264 },
  { name: 'medium', english: true, f32: 3060, f16: 1530, q8: 823 },
  // whisper.cpp publishes large-v3 quantized as q5_0 only.
  { name: 'large-v3', english: false, f32: 3090, f16: 3100, q8: 1080, quant: 'q5_0' },
  { name: 'large-v3-turbo', english: false, f32: 1620, f16: 1620, q8: 874 },
];

export const MODEL_PRESETS: ModelPreset[] = SIZES.flatMap((size) => {
  const variants = size.english ? [`${size.name}.en`, size.name] : [size.name];
  return variants.flatMap((variant) => {
    const englishOnly = variant.endsWith('.en');
    return [
      { source: `openai/whisper-${variant}`, label: `${variant} (safetensors)`, megabytes: size.f32, englishOnly },
      { source: `ggerganov/whisper.cpp:ggml-${variant}.bin`, label: `${variant} (ggml f16)`, megabytes: size.f16, englishOnly },
      { source: `ggerganov/whisper.cpp:ggml-${variant}-${size.quant ?? 'q8_0'}.bin`, label: `${variant} (ggml ${size.quant ?? 'q8_0'})`, megabytes: size.q8, englishOnly },
    ];
  });
});

export const DEFAULT_MODEL = 'openai/whisper-tiny.en';

