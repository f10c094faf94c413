// GFLOP/s of the quantized WGSL matmul (q8_0 and friends) against the f32 one, in Node (Dawn;
// SwiftShader when there is no GPU). Not a test.
// Run: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json XDG_RUNTIME_DIR=/tmp npx tsx bench/wgsl-quant.ts [M N K] [--repeat R]
// (without libvulkan1 add LD_LIBRARY_PATH=/usr/lib/chromium.)
import { encodeTensor } from '../src/core/model/dtype.ts';
import { readFloat32 } from '../src/kernels-wgsl/device.ts';
import { matmul, uploadLinearWeights } from '../src/kernels-wgsl/matmul.ts';
import { QUANTIZED_DTYPES, quantizedMatmulVariant, recordQuantizedMatmul, uploadQuantizedWeights } from '../src/kernels-wgsl/matmul-quant.ts';
import { runRecorded } from '../src/kernels-wgsl/wgsl-common.ts';
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
const { device, adapter } = gpu.context;
console.log(`adapter: ${adapter.info.vendor} ${adapter.info.architecture} ${adapter.info.description}`);
console.log(`y[${m}, ${n}] = x[${m}, ${k}] · Wᵀ + bias: ${((2 * m * n * k) / 1e6).toFixed(1)} MFLOP per run`);

const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const x = device.createBuffer({ size: m * k * 4, usage });
const xValues = testValues(m * k, { range: 1 });
device.queue.writeBuffer(x, 0, xValues.buffer, xValues.byteOffset, xValues.byteLength);
const output = device.createBuffer({ size: m * n * 4, usage });
const weightValues = testValues(n * k, { seed: 2, range: 1 });
const bias = testValues(n, { seed: 4, range: 1 });

async function measure(label: string, weightBytes: number, run: () => Promise<void>): Promise<void> {
  await run(); // compiles the pipeline
  await device.queue.onSubmittedWorkDone();
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const start = performance.now();
    await run();
    await device.queue.onSubmittedWorkDone();
    times.push(performance.now() - start);
  }
  const best = Math.min(...times);
  const gflops = (2 * m * n * k) / (best / 1000) / 1e9;
  console.log(`${label.padEnd(28)} weight ${(weightBytes / 1024).toFixed(0).padStart(6)} KiB  best ${best.toFixed(1).padStart(8)} ms of ${repeat}  ${gflops.toFixed(3)} GFLOP/s`);
}

const f32 = uploadLinearWeights(device, weightValues, n, k, bias);
await measure('f32 (matmul.ts)', n * k * 4, () => matmul(device, { x, m, weights: f32, output }));
f32.destroy();

const chosen = quantizedMatmulVariant(m);
for (const dtype of QUANTIZED_DTYPES) {
  const tensor = encodeTensor(weightValues, [n, k], dtype);
  const weights = uploadQuantizedWeights(device, tensor, bias);
  await measure(`${dtype} ${chosen.kind}`, weights.blocks.size, () => runRecorded(device, 'quantized matmul', (rec) => recordQuantizedMatmul(rec, { x, m, weights, output })));
  weights.destroy();
}
// Keeps the result observable, so nothing can be optimised away.
console.log(`y[0] = ${(await readFloat32(device, output, 1))[0]}`);
x.destroy();
output.destroy();
device.destroy();
