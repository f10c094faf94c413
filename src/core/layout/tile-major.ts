/**
 * The two index patterns every blocked layout here is made of, over any element type:
 * - tile-major: a [rows, cols] matrix as (rows/TR, cols/TC, TR, TC), each TR × TC tile contiguous
 *   and row-major inside (Rockchip's B, the GPU weight tiles);
 * - column panels: a [rows, cols] matrix as (cols/W, rows, W), W consecutive columns of a row
 *   together (Rockchip's A and C).
 * Both pad with zeros to whole tiles, so consumers never bounds-check.
 */
import { checkDims, checkLength, checkTile, layoutError, roundUp } from './shape.ts';

export type Elements = Float32Array | Uint16Array | Int8Array;
type ElementsOf<T extends Elements> = T extends Float32Array ? Float32ArrayConstructor : T extends Uint16Array ? Uint16ArrayConstructor : Int8ArrayConstructor;

/** Where value [row, col] sits in a tile-major array of `colTiles` tiles per tile row. */
export function tileMajorIndex(row: number, col: number, tileRows: number, tileCols: number, colTiles: number): number {
  const tile = Math.floor(row / tileRows) * colTiles + Math.floor(col / tileCols);
  return (tile * tileRows + (row % tileRows)) * tileCols + (col % tileCols);
}

export function packTileMajor<T extends Elements>(
  layout: string,
  values: T,
  rows: number,
  cols: number,
  tileRows: number,
  tileCols: number,
): { data: T; paddedRows: number; paddedCols: number } {
  checkDims(layout, { rows, cols });
  checkTile(layout, 'the tile height', tileRows);
  checkTile(layout, 'the tile width', tileCols);
  checkLength(layout, 'the matrix', values.length, rows * cols, `[${rows}, ${cols}]`);
  const paddedRows = roundUp(rows, tileRows);
  const paddedCols = roundUp(cols, tileCols);
  const colTiles = paddedCols / tileCols;
  const data = new (values.constructor as ElementsOf<T>)(paddedRows * paddedCols) as T;
  for (let row = 0; row < rows; row++) {
    for (let col0 = 0; col0 < cols; col0 += tileCols) {
      // One tile row's stretch of `row` is contiguous on both sides.
      const at = tileMajorIndex(row, col0, tileRows, tileCols, colTiles);
      data.set(values.subarray(row * cols + col0, row * cols + Math.min(cols, col0 + tileCols)) as never, at);
    }
  }
  return { data, paddedRows, paddedCols };
}

export function unpackTileMajor<T extends Elements>(data: T, rows: number, cols: number, tileRows: number, tileCols: number): T {
  const colTiles = roundUp(cols, tileCols) / tileCols;
  const out = new (data.constructor as ElementsOf<T>)(rows * cols) as T;
  for (let row = 0; row < rows; row++) {
    for (let col0 = 0; col0 < cols; col0 += tileCols) {
      const at = tileMajorIndex(row, col0, tileRows, tileCols, colTiles);
      out.set(data.subarray(at, at + Math.min(tileCols, cols - col0)) as never, row * cols + col0);
    }
  }
  return out;
}

/** [rows, cols] → (paddedCols/width, rows, width); paddedCols ≥ cols, a multiple of width. */
export function packColumnPanels(layout: string, values: Float32Array, rows: number, cols: number, width: number, paddedCols: number): Float32Array {
  checkDims(layout, { rows, cols });
  checkTile(layout, 'the panel width', width);
  checkTile(layout, 'the padded width', paddedCols, width);
  if (paddedCols < cols) throw layoutError(layout, `a padded width of ${paddedCols} cannot hold ${cols} columns`);
  checkLength(layout, 'the matrix', values.length, rows * cols, `[${rows}, ${cols}]`);
  const out = new Float32Array((paddedCols / width) * rows * width);
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) out[(Math.floor(col / width) * rows + row) * width + (col % width)] = values[row * cols + col]!;
  }
  return out;
}

export function unpackColumnPanels(data: Float32Array, rows: number, cols: number, width: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) out[row * cols + col] = data[(Math.floor(col / width) * rows + row) * width + (col % width)]!;
  }
  return out;
}
