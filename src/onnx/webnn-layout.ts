/**
 * Whether a WebNN context's preferred input layout fits the graphs. Every Conv the graphs hold is
 * channels-first, NCHW-like: the two encoder stem convolutions in both layouts, and with the
 * 'channels-first' lowering every linear too ((B, C, 1, S) activations, 1×1 Convs). A context that
 * prefers 'nhwc' (MLContext.opSupportLimits().preferredInputLayout) still runs them, but
 * onnxruntime's WebNN execution provider then wraps each such Conv in transposes.
 */
import type { WebNnContextAttempt } from '../core/device/probe.ts';
import type { OnnxLayout } from './lowering.ts';

export type WebNnDeviceType = 'npu' | 'gpu' | 'cpu';

/** The layout the graphs' Conv inputs are in. */
export const GRAPH_CONV_LAYOUT = 'nchw';

/** How long asking navigator.ml for a context may take before the preference counts as unknown. */
const CONTEXT_TIMEOUT_MS = 5_000;

interface MlLike {
  createContext(options: { deviceType: WebNnDeviceType }): Promise<{ opSupportLimits?: () => Record<string, unknown>; destroy?: () => void }>;
}

/** The preference the device probe recorded for this device type, if it did. */
export function probedPreference(contexts: readonly WebNnContextAttempt[] | undefined, deviceType: WebNnDeviceType): string | undefined {
  const attempt = contexts?.find((c) => c.created && 'deviceType' in c.options && c.options.deviceType === deviceType);
  return attempt?.preferredInputLayout;
}

/** Asks navigator.ml for a context of this device type and reads its preferred input layout; undefined when there is none to ask or it cannot say. */
export async function queryPreferredInputLayout(deviceType: WebNnDeviceType): Promise<string | undefined> {
  const ml = (globalThis as { navigator?: { ml?: Partial<MlLike> } }).navigator?.ml;
  if (typeof ml?.createContext !== 'function') return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), CONTEXT_TIMEOUT_MS);
    });
    const context = await Promise.race([ml.createContext({ deviceType }), timeout]);
    if (!context) return undefined;
    const preferred = typeof context.opSupportLimits === 'function' ? context.opSupportLimits().preferredInputLayout : undefined;
    context.destroy?.();
    return typeof preferred === 'string' ? preferred : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** The reason to record when `preferred` is not the graphs' Conv layout; undefined when it is, or unknown. */
export function layoutDisagreement(layout: OnnxLayout, provider: string, preferred: string | undefined): string | undefined {
  if (preferred === undefined || preferred.toLowerCase() === GRAPH_CONV_LAYOUT) return undefined;
  const convs = layout === 'channels-first'
    ? "the channels-first graphs hold activations as (B, C, 1, S), NCHW, and every linear is a 1×1 Conv, so onnxruntime's WebNN provider transposes around each of them"
    : "the row-major graphs' two encoder stem Convs are NCHW (their linears are Gemms, layout-free), so onnxruntime's WebNN provider transposes around those two";
  return `${provider} prefers ${preferred} input layout (MLContext.opSupportLimits().preferredInputLayout): ${convs}`;
}
