// AssemblyScript (compiled by scripts/build-wasm.mjs, not by tsc).
//
// Vector math shared by every kernel: one multiply-add, one exponential, one GELU. Nothing here
// uses static data (no lookup tables), so the module stays safe to instantiate once per thread
// over one shared memory.

/** a·b + c; with relaxed SIMD one fused instruction (rounding may then differ in the last bit). */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    return f32x4.relaxed_madd(a, b, c);
  } else {
    return f32x4.add(f32x4.mul(a, b), c);
  }
}

/**
 * e^y for y in [-87, 0]: y = n·ln2 + r, e^r by its degree-7 Taylor polynomial (|r| ≤ ln2/2).
 * n is rounded by adding 1.5·2²³, which leaves n in the low mantissa bits of the sum: cheaper than
 * f32x4.nearest plus i32x4.trunc_sat_f32x4_s, which x86 engines expand into long sequences.
 */
// @ts-ignore: decorator
@inline export function expNonPositive(y: v128): v128 {
  const magic = f32x4.splat(12582912.0);
  const shifted = f32x4.add(f32x4.mul(y, f32x4.splat(1.4426950408889634)), magic);
  const n = f32x4.sub(shifted, magic);
  // ln 2 split in two so n·ln2 is exact in its high part (Cody–Waite reduction).
  let r = f32x4.sub(y, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.add(r, f32x4.mul(n, f32x4.splat(2.12194440054690583e-4)));
  let p = f32x4.splat(1.0 / 5040.0);
  p = madd(p, r, f32x4.splat(1.0 / 720.0));
  p = madd(p, r, f32x4.splat(1.0 / 120.0));
  p = madd(p, r, f32x4.splat(1.0 / 24.0));
  p = madd(p, r, f32x4.splat(1.0 / 6.0));
  p = madd(p, r, f32x4.splat(0.5));
  p = madd(p, r, f32x4.splat(1.0));
  p = madd(p, r, f32x4.splat(1.0));
  // The sum's bits are 0x4B400000 + n; shifting left by 23 drops the 0x4B400000 part, leaving 2ⁿ.
  const scale = i32x4.shl(i32x4.add(shifted, i32x4.splat(127)), 23);
  return f32x4.mul(p, scale);
}

/**
 * e^y for any y ≤ 0, including -Infinity (softmax over masked scores): below -87 the result is
 * far under f32's normal range and is returned as exactly 0.
 */
// @ts-ignore: decorator
@inline export function expSoftmax(y: v128): v128 {
  const floor = f32x4.splat(-87.0);
  return v128.andnot(expNonPositive(f32x4.max(y, floor)), f32x4.lt(y, floor));
}

/** Scalar e^y for y ≤ 0 (0 for -Infinity), through the vector routine. */
export function expScalar(y: f32): f32 {
  return f32x4.extract_lane(expSoftmax(f32x4.splat(y)), 0);
}

/**
 * Natural logarithm of a positive finite x: x = 2^e·m with m in [√½, √2), ln m = 2·atanh(s),
 * s = (m − 1)/(m + 1), |s| ≤ 0.172, by its odd series to s¹¹ (error below 1e-10), in double.
 */
export function logPositive(x: f64): f64 {
  let bits = reinterpret<u64>(x);
  let exponent = <i32>((bits >> 52) & 0x7ff) - 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    exponent += 1;
  }
  const s = (m - 1.0) / (m + 1.0);
  const s2 = s * s;
  const series = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0)))));
  return <f64>exponent * 0.6931471805599453 + 2.0 * s * series;
}

/**
 * Exact GELU, x·Φ(x), written like the reference (src/core/reference/math.ts): through erfc of
 * |x|/√2 so the left tail is not a cancellation. erfc(z) = t·P(t)·e^{-z²}, t = 1/(1 + p·z)
 * (Abramowitz & Stegun 7.1.26, absolute error ≤ 1.5e-7). Past |x| = 10 the reference's own limits
 * apply (x, and 0), which also keeps ±Infinity finite-safe; NaN stays NaN.
 */
export function gelu(x: v128): v128 {
  const one = f32x4.splat(1.0);
  const z = f32x4.min(f32x4.mul(f32x4.abs(x), f32x4.splat(0.7071067811865476)), f32x4.splat(8.0));
  const t = f32x4.div(one, madd(z, f32x4.splat(0.3275911), one));
  let poly = f32x4.splat(1.061405429);
  poly = madd(poly, t, f32x4.splat(-1.453152027));
  poly = madd(poly, t, f32x4.splat(1.421413741));
  poly = madd(poly, t, f32x4.splat(-0.284496736));
  poly = madd(poly, t, f32x4.splat(0.254829592));
  poly = f32x4.mul(poly, t);
  const halfErfc = f32x4.mul(f32x4.mul(poly, expNonPositive(f32x4.neg(f32x4.mul(z, z)))), f32x4.splat(0.5));
  const phi = v128.bitselect(f32x4.sub(one, halfErfc), halfErfc, f32x4.ge(x, f32x4.splat(0.0)));
  // Masks test "x > 10" and "x < -10" so NaN, which fails both, keeps x · Φ = NaN.
  const out = v128.andnot(f32x4.mul(x, phi), f32x4.lt(x, f32x4.splat(-10.0)));
  return v128.bitselect(x, out, f32x4.gt(x, f32x4.splat(10.0)));
}

/** Sum of the four lanes. */
// @ts-ignore: decorator
@inline export function sumLanes(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

/** The first `count` (0..4) floats at ptr as a vector; the other lanes are 0. */
export function loadPartial(ptr: usize, count: i32): v128 {
  let v = f32x4.splat(0.0);
  if (count > 0) v = f32x4.replace_lane(v, 0, load<f32>(ptr));
  if (count > 1) v = f32x4.replace_lane(v, 1, load<f32>(ptr, 4));
  if (count > 2) v = f32x4.replace_lane(v, 2, load<f32>(ptr, 8));
  if (count > 3) v = f32x4.replace_lane(v, 3, load<f32>(ptr, 12));
  return v;
}

export function storePartial(ptr: usize, v: v128, count: i32): void {
  if (count > 0) store<f32>(ptr, f32x4.extract_lane(v, 0));
  if (count > 1) store<f32>(ptr, f32x4.extract_lane(v, 1), 4);
  if (count > 2) store<f32>(ptr, f32x4.extract_lane(v, 2), 8);
  if (count > 3) store<f32>(ptr, f32x4.extract_lane(v, 3), 12);
}
