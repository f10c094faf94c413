// GFLOP/s of the WGSL matmul in Node (Dawn; SwiftShader when there is no GPU). Not a test.
// Run: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json XDG_RUNTIME_DIR=/tmp npx tsx bench/wgsl-matmul.ts [M N K] [--repeat R]
// (scripts/run-tests.mjs shows the variables; without libvulkan1 add LD_LIBRARY_PATH=/usr/lib/chromium.)
import { readFloat32 } from '../src/kernels-wgsl/device.ts';
import { matmul, matmulVariant, uploadLinearWeights, type MatmulVariant } from '../src/kernels-wgsl/matmul.ts';
import { acquireNodeGpu } from '../test/gpu/node-gpu.ts';
import { testValues } from '../test/gpu/smoke-reference.ts';

const args = process.argv.slice(2);
const repeatAt = args.indexOf('--repeat');
const repeat = repeatAt >= 0 ? Number(args.splice(repeatAt, 2)[1]) : 3;
const [m, n, k] = args.length >= 3 ? args.slice(0, 3).map(Number) : [256, 384, 1536];

const gpu = await acquireNodeGpu();
if (!gpu.context) {
  console.error(`no WebGPU device: ${gpu.unavailable}`);
  process.exit(1);
}
const { device, adapter, features } = gpu.context;
console.log(`adapter: ${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}; features: ${[...features].join(', ')}`);

const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const buffer = (values: Float32Array) => {
  const b = device.createBuffer({ size: values.byteLength, usage });
  device.queue.writeBuffer(b, 0, values.buffer, values.byteOffset, values.byteLength);
  return b;
};
const x = buffer(testValues(m * k, { range: 1 }));
const residual = buffer(testValues(m * n, { seed: 3, range: 1 }));
const output = device.createBuffer({ size: m * n * 4, usage });
const weights = uploadLinearWeights(device, testValues(n * k, { seed: 2, range: 1 }), n, k, testValues(n, { seed: 4, range: 1 }));

async function measure(label: string, variant: MatmulVariant, epilogue: { gelu?: boolean; residual?: GPUBuffer }): Promise<void> {
  const run = async () => {
    await matmul(device, { x, m, weights, output, variant, ...epilogue });
    await device.queue.onSubmittedWorkDone();
  };
  await run(); // compiles the pipeline
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  const best = Math.min(...times);
  const gflops = (2 * m * n * k) / (best / 1000) / 1e9;
  console.log(`${label.padEnd(36)} best ${best.toFixed(1).padStart(8)} ms of ${repeat}  ${gflops.toFixed(3)} GFLOP/s`);
}

console.log(`y[${m}, ${n}] = x[${m}, ${k}] · Wᵀ: ${((2 * m * n * k) / 1e6).toFixed(1)} MFLOP per run`);
const chosen = matmulVariant(m, n, k, features as ReadonlySet<string>);
await measure(`${chosen.kind} (chosen) + bias`, chosen, {});
await measure(`${chosen.kind} (chosen) + bias, gelu, residual`, chosen, { gelu: true, residual });
if (chosen.kind === 'tiled' && k % 4 === 0) await measure('tiled, scalar x loads + bias', { kind: 'tiled', vectorX: false }, {});
// Keeps the result observable, so nothing can be optimised away.
console.log(`y[0] = ${(await readFloat32(device, output, 1))[0]}`);
for (const b of [x, residual, output]) b.destroy();
weights.destroy();
device.destroy();
