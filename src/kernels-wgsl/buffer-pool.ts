/**
 * Storage buffers for activations, recycled by size class. A decoder step needs the same few
 * sizes every time and an encoder pass the same ones every window, so after the first window the
 * pool creates nothing: GPU memory stays flat however long the audio is.
 *
 * Size classes are powers of two split into four steps (x, 1.25x, 1.5x, 1.75x), so a buffer is
 * at most a quarter larger than asked for. A released buffer may be handed out again at once,
 * even while recorded-but-unsubmitted commands still use it: commands of one queue run in order,
 * so the later user sees the earlier one's writes finished. Only host writes (queue.writeBuffer)
 * would jump that queue, which is why uploads go through a staging buffer and a recorded copy.
 */

const MIN_BYTES = 256;

/** The size class `bytes` falls in: the smallest class size ≥ bytes. */
export function sizeClass(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`a buffer of ${bytes} bytes`);
  if (bytes <= MIN_BYTES) return MIN_BYTES;
  const octave = 2 ** Math.floor(Math.log2(bytes));
  for (const step of [1, 1.25, 1.5, 1.75, 2]) {
    const size = octave * step;
    if (size >= bytes) return size;
  }
  return octave * 2;
}

export interface BufferPoolStats {
  /** Bytes of every buffer the pool has created and not destroyed. */
  allocatedBytes: number;
  /** The most `allocatedBytes` has ever been. */
  highWaterBytes: number;
  /** Bytes handed out and not yet released. */
  inUseBytes: number;
  /** Buffers created so far. */
  created: number;
}

export class BufferPool {
  readonly #device: GPUDevice;
  readonly #label: string;
  readonly #free = new Map<number, GPUBuffer[]>();
  readonly #inUse = new Set<GPUBuffer>();
  #allocated = 0;
  #highWater = 0;
  #inUseBytes = 0;
  #created = 0;

  constructor(device: GPUDevice, label = 'activation') {
    this.#device = device;
    this.#label = label;
  }

  /** A storage buffer (also a copy source and target) of at least `bytes` bytes. */
  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const buffer = this.#free.get(size)?.pop() ?? this.#create(size);
    this.#inUse.add(buffer);
    this.#inUseBytes += size;
    return buffer;
  }

  /** Gives a buffer from `acquire` back; releasing one twice or a stranger is a bug and throws. */
  release(buffer: GPUBuffer): void {
    if (!this.#inUse.delete(buffer)) throw new RangeError(`buffer "${buffer.label}" is not in use from this pool`);
    this.#inUseBytes -= buffer.size;
    let list = this.#free.get(buffer.size);
    if (!list) this.#free.set(buffer.size, (list = []));
    list.push(buffer);
  }

  stats(): BufferPoolStats {
    return { allocatedBytes: this.#allocated, highWaterBytes: this.#highWater, inUseBytes: this.#inUseBytes, created: this.#created };
  }

  /** Destroys the free buffers (those in use stay). */
  trim(): void {
    for (const list of this.#free.values()) {
      for (const buffer of list) {
        this.#allocated -= buffer.size;
        buffer.destroy();
      }
    }
    this.#free.clear();
  }

  /** Destroys every buffer, in use or not. */
  destroy(): void {
    this.trim();
    for (const buffer of this.#inUse) {
      this.#allocated -= buffer.size;
      buffer.destroy();
    }
    this.#inUse.clear();
    this.#inUseBytes = 0;
  }

  #create(size: number): GPUBuffer {
    const buffer = this.#device.createBuffer({
      label: `${this.#label} ${size}`,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    this.#created++;
    this.#allocated += size;
    this.#highWater = Math.max(this.#highWater, this.#allocated);
    return buffer;
  }
}
