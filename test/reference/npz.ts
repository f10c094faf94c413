/**
 * Minimal reader for NumPy .npz archives (a zip of .npy files, stored or deflated), enough for the
 * reference data the tests compare against. Sizes come from the central directory, since numpy
 * writes local headers with zip64 placeholders.
 */
import { inflateRawSync } from 'node:zlib';

export interface NpyArray {
  dtype: string;
  shape: number[];
  fortranOrder: boolean;
  data: Float32Array | Float64Array | Int16Array | Int32Array | Uint8Array;
}

export function readNpz(bytes: Uint8Array): Map<string, NpyArray> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('npz: no zip end-of-central-directory record');
  const entries = view.getUint16(eocd + 10, true);
  let at = view.getUint32(eocd + 16, true);
  const arrays = new Map<string, NpyArray>();
  for (let e = 0; e < entries; e++) {
    if (view.getUint32(at, true) !== 0x02014b50) throw new Error(`npz: bad central directory entry at ${at}`);
    const method = view.getUint16(at + 10, true);
    let compressed = view.getUint32(at + 20, true);
    let uncompressed = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let localOffset = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    // Zip64 extra field: the 64-bit values appear only for the 32-bit fields that are 0xFFFFFFFF.
    for (let x = at + 46 + nameLength; x < at + 46 + nameLength + extraLength;) {
      const id = view.getUint16(x, true);
      const size = view.getUint16(x + 2, true);
      if (id === 0x0001) {
        let y = x + 4;
        if (uncompressed === 0xffffffff) { uncompressed = Number(view.getBigUint64(y, true)); y += 8; }
        if (compressed === 0xffffffff) { compressed = Number(view.getBigUint64(y, true)); y += 8; }
        if (localOffset === 0xffffffff) { localOffset = Number(view.getBigUint64(y, true)); }
      }
      x += 4 + size;
    }
    at += 46 + nameLength + extraLength + commentLength;

    const localName = view.getUint16(localOffset + 26, true);
    const localExtra = view.getUint16(localOffset + 28, true);
    const start = localOffset + 30 + localName + localExtra;
    const raw = bytes.subarray(start, start + compressed);
    const content = method === 0 ? raw : method === 8 ? new Uint8Array(inflateRawSync(raw)) : undefined;
    if (!content) throw new Error(`npz: ${name} uses unsupported compression method ${method}`);
    if (content.length !== uncompressed) throw new Error(`npz: ${name} inflated to ${content.length} bytes, expected ${uncompressed}`);
    arrays.set(name.replace(/\.npy$/, ''), readNpy(content, name));
  }
  return arrays;
}

export function readNpy(bytes: Uint8Array, name = 'npy'): NpyArray {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== 0x93 || new TextDecoder().decode(bytes.subarray(1, 6)) !== 'NUMPY') throw new Error(`${name}: not a .npy file`);
  const major = bytes[6];
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1] === 'True';
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new Error(`${name}: unreadable header ${header}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const body = bytes.slice(headerStart + headerLength);
  const bodyView = new DataView(body.buffer);
  const little = descr[0] !== '>';
  const kind = descr.slice(1);
  const read = <T extends { [i: number]: number }>(make: (n: number) => T, size: number, get: (o: number) => number): T => {
    const out = make(count);
    for (let i = 0; i < count; i++) out[i] = get(i * size);
    return out;
  };
  let data: NpyArray['data'];
  switch (kind) {
    case 'f4': data = read((n) => new Float32Array(n), 4, (o) => bodyView.getFloat32(o, little)); break;
    case 'f8': data = read((n) => new Float64Array(n), 8, (o) => bodyView.getFloat64(o, little)); break;
    case 'i2': data = read((n) => new Int16Array(n), 2, (o) => bodyView.getInt16(o, little)); break;
    case 'i4': data = read((n) => new Int32Array(n), 4, (o) => bodyView.getInt32(o, little)); break;
    case 'u1': data = body.subarray(0, count); break;
    default: throw new Error(`${name}: unsupported dtype ${descr}`);
  }
  return { dtype: descr, shape, fortranOrder: fortran, data };
}
