// The allocator inside the WebAssembly memory: alignment, reuse, coalescing, growth, misuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmHeap } from '../../src/kernels-wasm/heap.ts';
import { MurmurError } from '../../src/core/errors.ts';

const PAGE = 65536;
const newHeap = (base = 100) => new WasmHeap(new WebAssembly.Memory({ initial: 1 }), base);

test('blocks start at the aligned base, are 64-byte aligned and do not overlap', () => {
  const heap = newHeap(100);
  const a = heap.allocate(10);
  const b = heap.allocate(100);
  const c = heap.allocate(0);
  assert.equal(a, 128);
  assert.equal(b, 192);
  assert.equal(c, 320);
  for (const offset of [a, b, c]) assert.equal(offset % 64, 0);
  assert.equal(heap.allocatedBytes, 64 + 128 + 64);
});

test('freed blocks are reused first-fit and neighbours merge', () => {
  const heap = newHeap(0);
  const [a, b, c, d] = [heap.allocate(64), heap.allocate(64), heap.allocate(64), heap.allocate(64)];
  heap.free(b);
  assert.equal(heap.allocate(64), b, 'an exact fit is reused');
  heap.free(a);
  heap.free(b);
  assert.equal(heap.allocate(128), a, 'a and b merged into one 128-byte block');
  heap.free(c);
  heap.free(a);
  heap.free(d);
  assert.equal(heap.allocatedBytes, 0);
  assert.equal(heap.allocate(256), 0, 'everything merged back into the top');
});

test('growing the memory keeps the data and takes fresh views', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const heap = new WasmHeap(memory, 0);
  const small = heap.allocate(16);
  heap.f32(small, 4).set([1, 2, 3, 4]);
  const big = heap.allocate(3 * PAGE);
  assert.ok(memory.buffer.byteLength >= big + 3 * PAGE, `memory grew to ${memory.buffer.byteLength}`);
  assert.deepEqual([...heap.f32(small, 4)], [1, 2, 3, 4]);
  heap.free(big);
  const size = memory.buffer.byteLength;
  heap.allocate(2 * PAGE);
  assert.equal(memory.buffer.byteLength, size, 'the freed space is reused, no new growth');
});

test('misuse is a MurmurError', () => {
  const heap = newHeap();
  const a = heap.allocate(8);
  heap.free(a);
  assert.throws(() => heap.free(a), (e: unknown) => e instanceof MurmurError && /no block at offset/.test(e.message));
  assert.throws(() => heap.allocate(-1), (e: unknown) => e instanceof MurmurError && /cannot allocate -1 bytes/.test(e.message));
  assert.throws(() => heap.allocate(5 * 2 ** 30), (e: unknown) => e instanceof MurmurError && e.code === 'WASM_MEMORY');
});
