// The WebGPU backend against the reference on the 'mini-multilingual' synthetic model (Hugging Face, f32), in Node.
import { describeParity } from './webgpu-backend-parity.ts';

describeParity({ preset: 'mini-multilingual', seed: 4, format: 'huggingface', dtype: 'f32' });
