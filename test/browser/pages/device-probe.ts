import { probeDevice, type DeviceProfile } from '../../../src/core/device/probe.ts';
import { planExecution, type ExecutionPlan } from '../../../src/core/device/plan.ts';
import { KNOWN_DIMS } from '../../../src/core/model/dims.ts';
import { exposePageApi } from './page-api.ts';

export const deviceProbePageApi = {
  probe(): Promise<DeviceProfile> {
    return probeDevice({ webnnTimeoutMs: 3000 });
  },
  plan(profile: DeviceProfile, preferences?: Partial<ExecutionPlan>): ExecutionPlan {
    return planExecution(profile, { dims: KNOWN_DIMS['tiny.en'] }, preferences);
  },
};

exposePageApi(deviceProbePageApi);
