/**
 * The embeddings on WebGPU: the decoder's token gather plus positional row
 * (tokenEmbedding[token] + positionalEmbedding[position], one row per token), and the encoder's
 * x + positionalEmbedding[0..rows). Both are element-wise with a grid-stride loop.
 */
import { readFloat32 } from './device.ts';
import {
  cachedPipeline,
  checkBuffer,
  checkCount,
  createStorage,
  destroyAll,
  recordDispatch,
  runRecorded,
  shapeError,
  temporaryBuffer,
  uniformWords,
  uploadStorage,
  type GpuRecording,
} from './wgsl-common.ts';

const WORKGROUP = 64;
/** Workgroups of an element-wise dispatch: enough to fill a GPU, the loop covers the rest. */
const MAX_GROUPS = 4096;

const EMBED_SHADER = /* wgsl */ `
// The token table holds rows [first, first + rows) of the embedding (all of it unless split).
struct Params { count: u32, width: u32, stride: u32, first: u32, rows: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<vec2u>;
@group(0) @binding(2) var<storage, read> tokenTable: array<f32>;
@group(0) @binding(3) var<storage, read> positionTable: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u) {
  for (var i = id.x; i < params.count; i += params.stride) {
    let row = i / params.width;
    let c = i % params.width;
    let tokenAndPosition = ids[row];
    // Another chunk's dispatch writes the rows of tokens outside this one (u32: below first wraps high).
    let tableRow = tokenAndPosition.x - params.first;
    if (tableRow < params.rows) {
      y[i] = tokenTable[tableRow * params.width + c] + positionTable[tokenAndPosition.y * params.width + c];
    }
  }
}
`;

const ADD_POSITIONS_SHADER = /* wgsl */ `
struct Params { count: u32, stride: u32 }

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3u) {
  // The first rows of the table line up element for element with x.
  for (var i = id.x; i < params.count; i += params.stride) { y[i] = x[i] + table[i]; }
}
`;

function elementwiseGroups(count: number): number {
  return Math.max(1, Math.min(MAX_GROUPS, Math.ceil(count / WORKGROUP)));
}

export interface EmbedArgs {
  tokens: readonly number[];
  positions: readonly number[];
  /** [vocabulary, width] f32, or only rows [tokenRows.first, + tokenRows.count) of it. */
  tokenEmbedding: GPUBuffer;
  vocabulary: number;
  /**
   * The rows of the vocabulary `tokenEmbedding` holds when the table is split into chunks (one
   * binding each): only tokens in that range are written, so one dispatch per chunk fills the output.
   */
  tokenRows?: { first: number; count: number };
  /** [contexts, width] f32. */
  positionalEmbedding: GPUBuffer;
  contexts: number;
  width: number;
  /** [tokens.length, width] f32. */
  output: GPUBuffer;
}

export function recordEmbed(recording: GpuRecording, args: EmbedArgs): void {
  const kernel = 'embed';
  const { tokens, positions, vocabulary, contexts, width } = args;
  if (tokens.length !== positions.length) throw shapeError(`${kernel}: ${tokens.length} tokens but ${positions.length} positions`);
  checkCount(kernel, 'tokens.length', tokens.length);
  checkCount(kernel, 'width', width);
  const tokenRows = args.tokenRows ?? { first: 0, count: vocabulary };
  if (!Number.isSafeInteger(tokenRows.first) || tokenRows.first < 0 || tokenRows.count < 1 || tokenRows.first + tokenRows.count > vocabulary) {
    throw shapeError(`${kernel}: table rows ${tokenRows.first}..${tokenRows.first + tokenRows.count - 1} outside the vocabulary of ${vocabulary}`);
  }
  checkBuffer(kernel, 'tokenEmbedding', args.tokenEmbedding, tokenRows.count * width);
  checkBuffer(kernel, 'positionalEmbedding', args.positionalEmbedding, contexts * width);
  checkBuffer(kernel, 'output', args.output, tokens.length * width);
  const ids = new Uint32Array(tokens.length * 2);
  tokens.forEach((token, i) => {
    const position = positions[i]!;
    // The ids index GPU memory directly: out-of-range ones are refused here, never read past a table.
    if (!Number.isInteger(token) || token < 0 || token >= vocabulary) throw shapeError(`${kernel}: token id ${token} outside the vocabulary of ${vocabulary}`);
    if (!Number.isInteger(position) || position < 0 || position >= contexts) throw shapeError(`${kernel}: position ${position} outside the context of ${contexts}`);
    ids[2 * i] = token;
    ids[2 * i + 1] = position;
  });
  const count = tokens.length * width;
  const groups = elementwiseGroups(count);
  const params = uniformWords(recording, kernel, [count, width, groups * WORKGROUP, tokenRows.first, tokenRows.count]);
  const idBuffer = temporaryBuffer(recording, 'embed ids', ids.buffer, 'storage');
  const pipeline = cachedPipeline(recording.device, kernel, EMBED_SHADER);
  recordDispatch(recording, kernel, pipeline, [params, idBuffer, args.tokenEmbedding, args.positionalEmbedding, args.output], [groups]);
}

export interface AddPositionalEmbeddingArgs {
  /** [rows, cols] f32. */
  x: GPUBuffer;
  rows: number;
  cols: number;
  /** [tableRows ≥ rows, cols] f32. */
  table: GPUBuffer;
  tableRows: number;
  /** [rows, cols] f32; may not be x. */
  output: GPUBuffer;
}

export function recordAddPositionalEmbedding(recording: GpuRecording, args: AddPositionalEmbeddingArgs): void {
  const kernel = 'addPositionalEmbedding';
  const { rows, cols, tableRows } = args;
  checkCount(kernel, 'rows', rows);
  checkCount(kernel, 'cols', cols);
  if (tableRows < rows) throw shapeError(`${kernel}: a table of ${tableRows} rows cannot cover ${rows} rows`);
  checkBuffer(kernel, 'x', args.x, rows * cols);
  checkBuffer(kernel, 'table', args.table, tableRows * cols);
  checkBuffer(kernel, 'output', args.output, rows * cols);
  if (args.output === args.x) throw shapeError(`${kernel}: the output buffer is also the input`);
  const count = rows * cols;
  const groups = elementwiseGroups(count);
  const params = uniformWords(recording, kernel, [count, groups * WORKGROUP]);
  const pipeline = cachedPipeline(recording.device, kernel, ADD_POSITIONS_SHADER);
  recordDispatch(recording, kernel, pipeline, [params, args.x, args.table, args.output], [groups]);
}

/** Uploads, runs and reads back one token embedding (tests, experiments). */
export async function runEmbed(
  device: GPUDevice,
  tokens: readonly number[],
  positions: readonly number[],
  tokenEmbedding: Float32Array,
  positionalEmbedding: Float32Array,
  width: number,
): Promise<Float32Array> {
  const count = tokens.length * width;
  const tokenTable = uploadStorage(device, 'embed tokens', tokenEmbedding);
  const positionTable = uploadStorage(device, 'embed positions', positionalEmbedding);
  const output = createStorage(device, 'embed output', count);
  try {
    await runRecorded(device, 'embed', (recording) =>
      recordEmbed(recording, {
        tokens,
        positions,
        tokenEmbedding: tokenTable,
        vocabulary: tokenEmbedding.length / width,
        positionalEmbedding: positionTable,
        contexts: positionalEmbedding.length / width,
        width,
        output,
      }),
    );
    return await readFloat32(device, output, count);
  } finally {
    destroyAll([tokenTable, positionTable, output]);
  }
}

/** Uploads, runs and reads back one x + positional embedding (tests, experiments). */
export async function runAddPositionalEmbedding(device: GPUDevice, x: Float32Array, rows: number, table: Float32Array): Promise<Float32Array> {
  const cols = x.length / rows;
  const xBuffer = uploadStorage(device, 'positions x', x);
  const tableBuffer = uploadStorage(device, 'positions table', table);
  const output = createStorage(device, 'positions output', x.length);
  try {
    await runRecorded(device, 'addPositionalEmbedding', (recording) =>
      recordAddPositionalEmbedding(recording, { x: xBuffer, rows, cols, table: tableBuffer, tableRows: table.length / cols, output }),
    );
    return await readFloat32(device, output, x.length);
  } finally {
    destroyAll([xBuffer, tableBuffer, output]);
  }
}
