/**
 * Memory layouts beyond row-major, as pure packers, unpackers and reference matmuls that read the
 * packed form directly: channels-first activations (the Neural Engine recipe), Rockchip's NPU
 * tiles, and GPU tile-major weights (f32 and q8_0 with scales beside each tile). Kernels that
 * consume them: src/kernels-wgsl/matmul-tiled-weights.ts, src/kernels-wgsl/conv1x1-channels-first.ts,
 * src/kernels-wasm/matmul-tiles.ts.
 */
export * from './channels-first.ts';
export * from './rockchip-tiles.ts';
export * from './gpu-tiles.ts';
export { packTileMajor, unpackTileMajor, tileMajorIndex, packColumnPanels, unpackColumnPanels } from './tile-major.ts';
