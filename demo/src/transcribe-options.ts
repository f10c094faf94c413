/** The Options fieldset: language, task, timestamps, beam size, initial prompt. */
import type { WhisperDims } from '../../src/core/model/dims.ts';
import { isMultilingual } from '../../src/core/model/dims.ts';
import { LANGUAGE_NAMES } from '../../src/core/tokenizer/languages.ts';
import type { TranscribeOptions } from '../../src/core/transcriber.ts';
import { elements } from './elements.ts';

const ui = elements.options;
const MAX_BEAMS = 10;
export const languageNames = LANGUAGE_NAMES as Record<string, string>;

export function setUpOptions(): void {
  for (const [code, name] of Object.entries(languageNames)) ui.language.add(new Option(`${name} (${code})`, code));
}

/** English-only models can neither translate nor take another language. */
export function adaptOptionsToModel(dims: WhisperDims): void {
  const multilingual = isMultilingual(dims);
  ui.task.querySelector<HTMLOptionElement>('option[value="translate"]')!.disabled = !multilingual;
  if (!multilingual) ui.task.value = 'transcribe';
  ui.language.disabled = !multilingual;
}

/** The chosen language code, or undefined for auto-detect. */
export function chosenLanguage(): string | undefined {
  return ui.language.disabled ? undefined : ui.language.value || undefined;
}

export function wantsWordTimestamps(): boolean {
  return ui.timestamps.value === 'word';
}

export function chosenOptions(): TranscribeOptions {
  const beam = Math.round(Number(ui.beam.value));
  const prompt = ui.prompt.value.trim();
  const language = chosenLanguage();
  return {
    task: ui.task.value === 'translate' ? 'translate' : 'transcribe',
    wordTimestamps: wantsWordTimestamps(),
    ...(language ? { language } : {}),
    ...(beam > 1 ? { beamSize: Math.min(MAX_BEAMS, beam) } : {}),
    ...(prompt ? { initialPrompt: prompt } : {}),
  };
}
