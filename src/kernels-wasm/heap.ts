/**
 * Allocation inside a WebAssembly.Memory the TypeScript side owns: packed weights live there for
 * the model's lifetime, activations for one call. First fit over a sorted free list, coalescing on
 * free, growing the memory when nothing fits. Blocks are 64-byte aligned (a cache line, and any
 * SIMD load is aligned).
 *
 * Growing detaches every view of the old buffer, so views are taken (`f32`) after allocating.
 */
import { MurmurError } from '../core/errors.ts';

const ALIGN = 64;
const PAGE_BYTES = 65536;
/** wasm32 addresses 4 GiB, 65536 pages. */
const MAX_PAGES = 65536;

interface Block {
  offset: number;
  size: number;
}

const alignUp = (value: number, to: number) => Math.ceil(value / to) * to;

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  /** Free blocks below `#top`, sorted by offset, never adjacent (they are merged). */
  #free: Block[] = [];
  #sizes = new Map<number, number>();
  /** Everything from here to the end of the memory is free. */
  #top: number;

  /** `base`: the first byte the heap may hand out (the module's static data sits below). */
  constructor(memory: WebAssembly.Memory, base: number) {
    this.memory = memory;
    this.#top = alignUp(base, ALIGN);
  }

  /** Bytes handed out and not yet freed. */
  get allocatedBytes(): number {
    let total = 0;
    for (const size of this.#sizes.values()) total += size;
    return total;
  }

  /** A block of at least `bytes` bytes (0 gets a minimal block); returns its byte offset. */
  allocate(bytes: number): number {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new MurmurError('WASM_MEMORY', `cannot allocate ${bytes} bytes`);
    const size = alignUp(Math.max(bytes, 1), ALIGN);
    const index = this.#free.findIndex((block) => block.size >= size);
    let offset: number;
    if (index !== -1) {
      const block = this.#free[index]!;
      offset = block.offset;
      if (block.size === size) this.#free.splice(index, 1);
      else this.#free[index] = { offset: offset + size, size: block.size - size };
    } else {
      offset = this.#top;
      this.#ensureCapacity(offset + size);
      this.#top = offset + size;
    }
    this.#sizes.set(offset, size);
    return offset;
  }

  free(offset: number): void {
    const size = this.#sizes.get(offset);
    if (size === undefined) throw new MurmurError('WASM_MEMORY', `no block at offset ${offset} to free`);
    this.#sizes.delete(offset);
    let block: Block = { offset, size };
    let at = this.#free.findIndex((b) => b.offset > offset);
    if (at === -1) at = this.#free.length;
    const before = this.#free[at - 1];
    if (before && before.offset + before.size === block.offset) {
      block = { offset: before.offset, size: before.size + block.size };
      this.#free.splice(--at, 1);
    }
    const after = this.#free[at];
    if (after && block.offset + block.size === after.offset) {
      block = { offset: block.offset, size: block.size + after.size };
      this.#free.splice(at, 1);
    }
    if (block.offset + block.size === this.#top) this.#top = block.offset;
    else this.#free.splice(at, 0, block);
  }

  /** A view of `length` floats at `offset`; valid until the next allocate. */
  f32(offset: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, offset, length);
  }

  #ensureCapacity(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE_BYTES);
    if (have / PAGE_BYTES + pages > MAX_PAGES) {
      throw new MurmurError('WASM_MEMORY', `WebAssembly memory cannot grow to ${end} bytes (the limit is 4 GiB)`);
    }
    try {
      this.memory.grow(pages);
    } catch (cause) {
      throw new MurmurError('WASM_MEMORY', `could not grow WebAssembly memory to ${end} bytes`, { cause });
    }
  }
}
