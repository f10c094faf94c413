/**
 * What every layout packer shares: rounding up to a tile multiple, and refusing dimensions or
 * buffers that do not fit with a SHAPE error naming the layout and the sizes.
 */
import { MurmurError } from '../errors.ts';

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

export function layoutError(layout: string, problem: string): MurmurError {
  return new MurmurError('SHAPE', `${layout}: ${problem}`);
}

/** Each named dimension must be a positive safe integer. */
export function checkDims(layout: string, dims: Record<string, number>): void {
  for (const [name, value] of Object.entries(dims)) {
    if (!Number.isSafeInteger(value) || value < 1) throw layoutError(layout, `${name} must be a positive integer, got ${value}`);
  }
}

export function checkLength(layout: string, what: string, actual: number, expected: number, shape: string): void {
  if (actual !== expected) throw layoutError(layout, `${what} holds ${actual} values, but ${shape} needs ${expected}`);
}

/** A tile side must be a positive integer multiple of `of` (1 for any). */
export function checkTile(layout: string, name: string, value: number, of = 1): void {
  if (!Number.isSafeInteger(value) || value < 1 || value % of !== 0) {
    throw layoutError(layout, `${name} must be a positive multiple of ${of}, got ${value}`);
  }
}
