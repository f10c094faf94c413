// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// Kernel-3, padding-1 convolution over time as a matrix product: im2col gathers each output
// frame's receptive field into one row of `patches` [outFrames, 3·channels], then the packed
// matmul (matmul.ts, with its bias and GELU epilogue) multiplies it by the weight. Columns are
// tap-major, column k·channels + c = input frame t·stride + k − 1, channel c (zero outside the
// input), so the weight [out, in, 3] is packed as the [out, 3·in] matrix W'[o, k·in + c] = W[o, c, k].
// Tap-major makes the time-major gather three contiguous channel rows, in fact one run of
// 3·channels floats: frames t·stride − 1 .. t·stride + 1 are adjacent in memory.

/** Output frames rowStart..rowEnd of the patch matrix. channelsFirst: x is [channels, frames], else [frames, channels]. */
export function im2col(x: usize, channels: i32, frames: i32, stride: i32, channelsFirst: i32, patches: usize, rowStart: i32, rowEnd: i32): void {
  const channelBytes = <usize>channels << 2;
  const patchBytes = channelBytes * 3;
  for (let t = rowStart; t < rowEnd; t++) {
    const first = t * stride - 1;
    const row = patches + <usize>t * patchBytes;
    if (channelsFirst == 0) {
      // Frames first..first+2, clipped to the input; the clipped taps are zeros.
      const from = max(first, 0);
      const to = min(first + 3, frames);
      const lead = <usize>(from - first) * channelBytes;
      const copied = <usize>max(to - from, 0) * channelBytes;
      if (lead != 0) memory.fill(row, 0, lead);
      if (copied != 0) memory.copy(row + lead, x + <usize>from * channelBytes, copied);
      if (lead + copied < patchBytes) memory.fill(row + lead + copied, 0, patchBytes - lead - copied);
      continue;
    }
    for (let k = 0; k < 3; k++) {
      const frame = first + k;
      const tap = row + <usize>k * channelBytes;
      if (frame < 0 || frame >= frames) {
        memory.fill(tap, 0, channelBytes);
        continue;
      }
      const frameBytes = <usize>frames << 2;
      let source = x + (<usize>frame << 2);
      for (let c: usize = 0; c < channelBytes; c += 4) {
        store<f32>(tap + c, load<f32>(source));
        source += frameBytes;
      }
    }
  }
}
