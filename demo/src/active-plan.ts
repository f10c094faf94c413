/**
 * The plan behind the loaded transcriber: the one it reports (`transcriber.plan`: the plan the
 * engine was built from, the backend used and every backend tried), else — with a library that
 * does not report one — a plan computed here from this device's profile and the model.
 */
import type { MurmurTranscriber } from '../../src/client/transcriber.ts';
import { planExecution, type ExecutionBackend, type ExecutionPlan } from '../../src/core/device/plan.ts';
import type { DeviceProfile } from '../../src/core/device/probe.ts';
import type { WeightFacts } from './model-facts.ts';

export interface BackendTried {
  backend: string;
  outcome: string;
  reason?: string;
  /** What the engine built it with (layout, precision, threads, kernel variants), when it reports that. */
  applied?: { layout: string; precision: string; threads?: number; kernelVariantsSource?: string; weightBytes?: number };
}

export interface ActivePlan {
  plan: ExecutionPlan;
  /** The backend the transcriber actually runs on. */
  backend: string;
  /** The backends the engine tried, in order, when it reports them. */
  attempts: BackendTried[];
  /** 'transcriber': reported by the engine; 'page': computed here, the engine may have chosen otherwise. */
  origin: 'transcriber' | 'page';
}

export function activePlan(transcriber: MurmurTranscriber, profile: DeviceProfile, weights: WeightFacts, requested: string): ActivePlan {
  // Checked at run time too: the demo may run against a library build from before plans were reported.
  const reported = (transcriber as Partial<Pick<MurmurTranscriber, 'plan'>>).plan;
  if (reported && Array.isArray(reported.reasons) && Array.isArray(reported.backendOrder)) {
    return { plan: reported, backend: reported.backend ?? transcriber.model.backend, attempts: reported.attempts ?? [], origin: 'transcriber' };
  }
  // Mirror what the page asked for, so the plan's reasons say the order was forced.
  const preferences: Partial<ExecutionPlan> = requested === 'auto' ? {} : { backendOrder: [requested as ExecutionBackend, 'reference'] };
  return { plan: planExecution(profile, { dims: transcriber.model.dims, ...weights }, preferences), backend: transcriber.model.backend, attempts: [], origin: 'page' };
}
