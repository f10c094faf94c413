// The WebGPU backend with layout 'blocked' (linear weights GPU tile-major, matmul-tiled-weights.ts)
// against the reference on the English 'mini' model in Node: f32 weights as f32 tiles, q8_0 as
// q8_0 tiles, every linear layer (the tied logits and the decoder steps' few-row products
// included) on the tile-major kernel and no other. q8_0 decodes fewer steps: each step's
// product over the 51864-token vocabulary is slow on SwiftShader.
import assert from 'node:assert/strict';
import type { WebGpuBackend } from '../../src/kernels-wgsl/backend.ts';
import { describeParity } from './webgpu-backend-parity.ts';

function onlyTiledKernel(backend: WebGpuBackend): void {
  const kernels = backend.stats().linearKernels;
  assert.ok((kernels.tiledWeightsMatmul ?? 0) > 0, `the tile-major kernel ran: ${JSON.stringify(kernels)}`);
  assert.deepEqual(Object.keys(kernels), ['tiledWeightsMatmul'], `no other linear kernel ran: ${JSON.stringify(kernels)}`);
}

describeParity({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'f32' }, 32, { backend: { layout: 'blocked' }, check: onlyTiledKernel });
describeParity({ preset: 'mini', seed: 3, format: 'ggml', dtype: 'q8_0' }, 16, { backend: { layout: 'blocked' }, check: onlyTiledKernel });
