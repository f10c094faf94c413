/**
 * Two trivial kernels that prove a WebGPU device really computes: the test suites run them in
 * Node (Dawn) and in headless Chromium and compare with plain TypeScript. They exercise the
 * parts every real kernel relies on: bounds checks for sizes that are not a multiple of the
 * workgroup size, uniforms, readback, error scopes, and (optionally) subgroup operations.
 */
import { GpuKernelError, GpuUnavailableError, readFloat32, submitChecked } from './device.ts';

export const SMOKE_WORKGROUP_SIZE = 64;

export interface AffineParams {
  scale: number;
  offset: number;
}

const AFFINE_SHADER = /* wgsl */ `
struct Params { scale: f32, offset: f32, length: u32, stride: u32 }

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(${SMOKE_WORKGROUP_SIZE})
fn main(@builtin(global_invocation_id) id: vec3u) {
  // Grid-stride loop: any length works with a dispatch capped at the per-dimension limit.
  for (var i = id.x; i < params.length; i += params.stride) {
    output[i] = params.scale * input[i] + params.offset;
  }
}
`;

/** y[i] = scale · x[i] + offset, computed on the GPU. */
export async function runSmokeKernel(
  device: GPUDevice,
  input: Float32Array,
  params: AffineParams = { scale: 2, offset: 1 },
): Promise<Float32Array> {
  if (input.length === 0) return new Float32Array(0);
  const groups = Math.min(Math.ceil(input.length / SMOKE_WORKGROUP_SIZE), device.limits.maxComputeWorkgroupsPerDimension);
  const uniforms = new ArrayBuffer(16);
  new Float32Array(uniforms, 0, 2).set([params.scale, params.offset]);
  new Uint32Array(uniforms, 8, 2).set([input.length, groups * SMOKE_WORKGROUP_SIZE]);

  const buffers = createBuffers(device, 'smoke-affine', input, input.length, uniforms);
  try {
    await submitChecked(device, 'smoke-affine', () => dispatch(device, AFFINE_SHADER, buffers, groups));
    return await readFloat32(device, buffers.output, input.length);
  } finally {
    destroyBuffers(buffers);
  }
}

const SUBGROUP_SUM_SHADER = /* wgsl */ `
enable subgroups;

struct Params { length: u32 }

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> blockSums: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

// One slot per subgroup; the subgroup size may be as small as 1, hence the full size.
var<workgroup> subgroupSums: array<f32, ${SMOKE_WORKGROUP_SIZE}>;
var<workgroup> subgroupCount: atomic<u32>;

@compute @workgroup_size(${SMOKE_WORKGROUP_SIZE})
fn main(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(local_invocation_index) local: u32,
  @builtin(workgroup_id) group: vec3u,
  @builtin(subgroup_invocation_id) lane: u32,
) {
  var value = 0.0;
  if (id.x < params.length) { value = input[id.x]; }
  // Every invocation takes part, so the subgroup operation stays in uniform control flow.
  let subgroupTotal = subgroupAdd(value);
  if (lane == 0u) {
    // Which invocations form a subgroup is up to the implementation; a counter hands out slots.
    subgroupSums[atomicAdd(&subgroupCount, 1u)] = subgroupTotal;
  }
  workgroupBarrier();
  if (local == 0u) {
    var total = 0.0;
    for (var s = 0u; s < atomicLoad(&subgroupCount); s++) { total += subgroupSums[s]; }
    blockSums[group.x] = total;
  }
}
`;

/**
 * The sum of each consecutive block of SMOKE_WORKGROUP_SIZE values (the last block may be
 * shorter), reduced with subgroupAdd. Needs a device created with the "subgroups" feature.
 */
export async function runSubgroupSumKernel(device: GPUDevice, input: Float32Array): Promise<Float32Array> {
  if (!device.features.has('subgroups')) {
    throw new GpuUnavailableError('the subgroup sum kernel needs a device created with the "subgroups" feature');
  }
  if (input.length === 0) return new Float32Array(0);
  const groups = Math.ceil(input.length / SMOKE_WORKGROUP_SIZE);
  if (groups > device.limits.maxComputeWorkgroupsPerDimension) {
    throw new GpuKernelError(
      'smoke-subgroup-sum',
      `${input.length} values need ${groups} workgroups, more than maxComputeWorkgroupsPerDimension (${device.limits.maxComputeWorkgroupsPerDimension})`,
    );
  }
  const uniforms = new Uint32Array([input.length, 0, 0, 0]).buffer;
  const buffers = createBuffers(device, 'smoke-subgroup-sum', input, groups, uniforms);
  try {
    await submitChecked(device, 'smoke-subgroup-sum', () => dispatch(device, SUBGROUP_SUM_SHADER, buffers, groups));
    return await readFloat32(device, buffers.output, groups);
  } finally {
    destroyBuffers(buffers);
  }
}

interface KernelBuffers {
  input: GPUBuffer;
  output: GPUBuffer;
  uniforms: GPUBuffer;
}

function createBuffers(device: GPUDevice, label: string, input: Float32Array, outputLength: number, uniforms: ArrayBuffer): KernelBuffers {
  const storage = GPUBufferUsage.STORAGE;
  const buffers = {
    input: device.createBuffer({ label: `${label} input`, size: input.byteLength, usage: storage | GPUBufferUsage.COPY_DST }),
    output: device.createBuffer({ label: `${label} output`, size: outputLength * 4, usage: storage | GPUBufferUsage.COPY_SRC }),
    uniforms: device.createBuffer({ label: `${label} params`, size: uniforms.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
  };
  device.queue.writeBuffer(buffers.input, 0, input.buffer, input.byteOffset, input.byteLength);
  device.queue.writeBuffer(buffers.uniforms, 0, uniforms);
  return buffers;
}

function destroyBuffers(buffers: KernelBuffers): void {
  buffers.input.destroy();
  buffers.output.destroy();
  buffers.uniforms.destroy();
}

function dispatch(device: GPUDevice, code: string, buffers: KernelBuffers, groups: number): void {
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
  });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: buffers.input } },
      { binding: 1, resource: { buffer: buffers.output } },
      { binding: 2, resource: { buffer: buffers.uniforms } },
    ],
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(groups);
  pass.end();
  device.queue.submit([encoder.finish()]);
}
