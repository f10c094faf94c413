/**
 * The Device section: the probe's profile as soon as the page opens, the execution plan and the
 * backend in use once a model is loaded, and the "benchmark this device" chart.
 */
import { probeDevice, type DeviceProfile } from '../../src/core/device/probe.ts';
import { activePlan } from './active-plan.ts';
import { benchmarkDevice } from './bench.ts';
import { barChart } from './chart.ts';
import { planReport, profileReport } from './device-report.ts';
import { elements } from './elements.ts';
import { messageOf } from './format.ts';
import type { LoadedModel } from './model-panel.ts';
import { backendName } from './model-panel.ts';

const ui = elements.device;

export interface DevicePanel {
  setModel(model: LoadedModel | undefined, requestedBackend: string): Promise<void>;
}

export function setUpDevicePanel(): DevicePanel {
  const profile = probeDevice();
  let model: LoadedModel | undefined;
  void showProfile(profile);

  ui.benchmark.addEventListener('click', async () => {
    const loaded = model;
    if (!loaded) return;
    ui.benchmark.disabled = true;
    try {
      await runBenchmark(loaded);
    } catch (error) {
      ui.benchmarkStatus.textContent = `Benchmark failed: ${messageOf(error)}`;
    } finally {
      ui.benchmark.disabled = model === undefined;
    }
  });

  return {
    async setModel(next, requestedBackend) {
      model = next;
      ui.benchmark.disabled = next === undefined;
      if (!next) {
        ui.backend.textContent = 'No model loaded yet.';
        ui.plan.replaceChildren();
        return;
      }
      const fresh = await profile;
      if (model !== next) return;
      const active = activePlan(next.transcriber, fresh, next.weights, requestedBackend);
      ui.backend.textContent = describeBackend(active.backend, active.plan.backendOrder[0], active.origin);
      ui.plan.replaceChildren(...planReport(active.plan, active.attempts));
    },
  };
}

async function showProfile(profile: Promise<DeviceProfile>): Promise<void> {
  ui.profile.replaceChildren(...profileReport(await profile));
}

function describeBackend(used: string, planned: string | undefined, origin: 'transcriber' | 'page'): string {
  const running = `Running on ${backendName(used)}.`;
  if (origin === 'transcriber') return `${running} The plan below is the transcriber's own.`;
  const agreement = planned === used ? 'it starts with the same backend' : `it would start with ${backendName(planned ?? 'none')}, but the transcriber's automatic choice does not follow it`;
  return `${running} The transcriber does not report its plan; the plan below was computed in this page from the device profile, and ${agreement}.`;
}

async function runBenchmark(model: LoadedModel): Promise<void> {
  const timings = await benchmarkDevice(model.source, model.transcriber, (message) => (ui.benchmarkStatus.textContent = message));
  const chart = barChart('Benchmark', [
    { label: 'Encoder (ms)', bars: timings.map((t) => ({ label: backendName(t.backend), value: t.encoderMs, unit: 'ms' })) },
    { label: 'Decode (ms per token)', bars: timings.map((t) => ({ label: backendName(t.backend), value: t.decodeMsPerToken, unit: 'ms/token' })) },
  ]);
  ui.chart.querySelector('svg')?.remove();
  ui.chart.prepend(chart);
  ui.chart.hidden = false;
  ui.benchmarkStatus.textContent = 'Benchmark done.';
}
