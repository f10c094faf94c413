/**
 * The reference backend's activation: a row-major Float32Array with its shape. Released tensors
 * drop their storage so a use-after-release fails loudly instead of reading stale values.
 */
import { MurmurError } from '../errors.ts';

export class RefTensor {
  #data: Float32Array | undefined;
  readonly rows: number;
  readonly cols: number;

  constructor(data: Float32Array, rows: number, cols: number) {
    if (data.length !== rows * cols) throw shapeError(`${data.length} values cannot be a [${rows}, ${cols}] tensor`);
    this.#data = data;
    this.rows = rows;
    this.cols = cols;
  }

  get data(): Float32Array {
    if (!this.#data) throw new MurmurError('RELEASED', `a [${this.rows}, ${this.cols}] tensor was used after release()`);
    return this.#data;
  }

  get released(): boolean {
    return this.#data === undefined;
  }

  release(): void {
    this.#data = undefined;
  }
}

/** Mismatched shapes between ops: a bug in the caller, reported with both shapes. */
export function shapeError(problem: string): MurmurError {
  return new MurmurError('SHAPE', problem);
}
