// The WebGPU backend against the reference on the English 'mini' model with q8_0 weights (ggml),
// in Node: linear layers, the tied logits included, stay quantized on the GPU (matmul-quant.ts).
// 4 steps rather than 64: the quantized gemv over the 51864-token vocabulary takes ~1.9 s a step
// on SwiftShader, and the f16/f32 files already cover the 64-step decode.
import { describeParity } from './webgpu-backend-parity.ts';

describeParity({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'q8_0' }, 4);
