// The non-default kernel variants (src/kernels-wgsl/variants.ts) on the same awkward shapes as
// the default ones, shared by the Node and browser tests (so nothing here imports node:*).
import type { MatmulVariant } from '../../src/kernels-wgsl/matmul.ts';
import type { AttentionVariant, LayerNormVariantName } from '../../src/kernels-wgsl/variants.ts';
import { ALL_EPILOGUES } from './matmul-cases.ts';

export const VARIANT_ATTENTION: readonly AttentionVariant[] = ['rows2', 'rows4', 'rows8'];
export const VARIANT_LAYER_NORM: readonly LayerNormVariantName[] = ['thread'];

/** Register blocks the autotuner may pick, plus the smallest (1×1) to cross every edge. */
export const VARIANT_MATMULS: readonly Extract<MatmulVariant, { kind: 'register' }>[] = [
  { kind: 'register', rowsPerThread: 4, colsPerThread: 8, workgroup: 64, vectorX: true },
  { kind: 'register', rowsPerThread: 8, colsPerThread: 4, workgroup: 64, vectorX: true },
  { kind: 'register', rowsPerThread: 8, colsPerThread: 8, workgroup: 128, vectorX: true },
  { kind: 'register', rowsPerThread: 2, colsPerThread: 1, workgroup: 256, vectorX: true },
];

/** [M, N, K]: none a multiple of the register blocks; K odd forces scalar x loads. */
export const VARIANT_MATMUL_SHAPES: readonly (readonly [number, number, number])[] = [
  [9, 5, 7],
  [17, 33, 65],
  [70, 130, 24],
];

/** Every epilogue on one shape, the plain product on the others: the epilogue code is shared. */
export function variantMatmulCases() {
  return VARIANT_MATMUL_SHAPES.flatMap(([m, n, k], index) =>
    (index === 0 ? ALL_EPILOGUES : [ALL_EPILOGUES[7]!]).map((epilogue) => ({ m, n, k, epilogue })),
  );
}

export function describeMatmulVariant(variant: MatmulVariant): string {
  return variant.kind === 'register' ? `register ${variant.rowsPerThread}×${variant.colsPerThread} wg${variant.workgroup}` : variant.kind;
}

/** The variant with vec4 x loads only where K allows them. */
export function forK(variant: MatmulVariant, k: number): MatmulVariant {
  return { ...variant, vectorX: k % 4 === 0 };
}
