// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// Embedding rows: the encoder's positional add and the decoder's token + position gather. Tables
// are row-major f32 [entries, width]; ids were validated by the caller. y may be x.

/** y[r] = x[r] + table[r] for rows rowStart..rowEnd. */
export function addPositionalEmbedding(x: usize, table: usize, y: usize, width: i32, rowStart: i32, rowEnd: i32): void {
  const rowBytes = <usize>width << 2;
  addRows(x + <usize>rowStart * rowBytes, table + <usize>rowStart * rowBytes, y + <usize>rowStart * rowBytes, <usize>(rowEnd - rowStart) * rowBytes);
}

/** y[i] = tokenTable[tokens[i]] + positionTable[positions[i]] for i in rowStart..rowEnd (ids are i32). */
export function embed(tokens: usize, positions: usize, tokenTable: usize, positionTable: usize, y: usize, width: i32, rowStart: i32, rowEnd: i32): void {
  const rowBytes = <usize>width << 2;
  for (let i = rowStart; i < rowEnd; i++) {
    const token = <usize>load<i32>(tokens + (<usize>i << 2));
    const position = <usize>load<i32>(positions + (<usize>i << 2));
    addRows(tokenTable + token * rowBytes, positionTable + position * rowBytes, y + <usize>i * rowBytes, rowBytes);
  }
}

function addRows(a: usize, b: usize, y: usize, bytes: usize): void {
  const vectorEnd = bytes & ~15;
  let i: usize = 0;
  for (; i < vectorEnd; i += 16) v128.store(y + i, f32x4.add(v128.load(a + i), v128.load(b + i)));
  for (; i < bytes; i += 4) store<f32>(y + i, load<f32>(a + i) + load<f32>(b + i));
}
