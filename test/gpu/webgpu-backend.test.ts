// The WebGPU backend against the reference on the English 'mini' synthetic model (ggml, f16), in Node.
import { describeParity } from './webgpu-backend-parity.ts';

describeParity({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f16' });
