/**
 * Scalar functions the reference backend needs to float precision. Computed in double so the
 * reference stays an oracle for f32 kernels.
 */

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const ONE_OVER_SQRT_PI = 1 / Math.sqrt(Math.PI);
const SQRT_HALF = Math.SQRT1_2;

// Below this the Maclaurin series of erf converges in a few dozen terms with little cancellation;
// above it erfc is small and its continued fraction converges fast and keeps relative precision.
const SERIES_LIMIT = 2.5;
const CONTINUED_FRACTION_DEPTH = 60;

function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const contribution = term / (2 * n + 1);
    sum += contribution;
    if (Math.abs(contribution) < 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * sum;
}

/** erfc(x) for x ≥ SERIES_LIMIT: e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))). */
function erfcContinuedFraction(x: number): number {
  let denominator = x;
  for (let k = CONTINUED_FRACTION_DEPTH; k >= 1; k--) denominator = x + k / 2 / denominator;
  return (Math.exp(-x * x) * ONE_OVER_SQRT_PI) / denominator;
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= SERIES_LIMIT) return 1 - erfcContinuedFraction(x);
  if (x <= -SERIES_LIMIT) return erfcContinuedFraction(-x) - 1;
  return erfSeries(x);
}

export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= SERIES_LIMIT) return erfcContinuedFraction(x);
  if (x <= -SERIES_LIMIT) return 2 - erfcContinuedFraction(-x);
  return 1 - erfSeries(x);
}

/**
 * Exact GELU, x·Φ(x), as PyTorch's default nn.GELU (not the tanh approximation). Written through
 * erfc of |x| so the left tail keeps its relative precision instead of cancelling to zero.
 */
export function gelu(x: number): number {
  // Past ±10 the correction is far below f32 resolution; the guards also keep ±Infinity finite-safe.
  if (x > 10) return x;
  if (x < -10) return -0;
  if (x >= 0) return x - 0.5 * x * erfc(x * SQRT_HALF);
  return 0.5 * x * erfc(-x * SQRT_HALF);
}
