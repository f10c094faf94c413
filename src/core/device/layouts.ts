// Which layouts each backend consumes: one table for the planner, the engine host and createTranscriber.
import type { ExecutionBackend, ExecutionLayout } from './plan.ts';

/** Layouts each backend consumes; 'row-major' is every backend's default. */
export const LAYOUTS_BY_BACKEND: Readonly<Record<ExecutionBackend, readonly ExecutionLayout[]>> = {
  webgpu: ['row-major', 'blocked'],
  wasm: ['row-major', 'blocked'],
  webnn: ['row-major', 'channels-first'],
  reference: ['row-major'],
};
