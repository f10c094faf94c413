/** Export: the last result as TXT, SRT, WebVTT or JSON, downloaded under the audio file's name. */
import { toJson, toSrt, toTxt, toVtt } from '../../src/core/export/index.ts';
import type { TranscriptionResult } from '../../src/core/transcriber.ts';
import { elements } from './elements.ts';
import { wantsWordTimestamps } from './transcribe-options.ts';

const ui = elements.transcript;

const FORMATS: { button: HTMLButtonElement; extension: string; type: string; write(result: TranscriptionResult): string }[] = [
  { button: ui.txt, extension: 'txt', type: 'text/plain', write: (result) => toTxt(result) },
  { button: ui.srt, extension: 'srt', type: 'application/x-subrip', write: (result) => toSrt(result) },
  { button: ui.vtt, extension: 'vtt', type: 'text/vtt', write: (result) => toVtt(result, { words: wantsWordTimestamps() && result.segments.some((segment) => segment.words?.length) }) },
  { button: ui.json, extension: 'json', type: 'application/json', write: (result) => toJson(result, { indent: 2 }) },
];

export function setUpExport(): { setResult(result: TranscriptionResult | undefined, audioName: string): void } {
  let result: TranscriptionResult | undefined;
  let baseName = 'transcript';
  for (const format of FORMATS) {
    format.button.addEventListener('click', () => {
      if (result) download(format.write(result), `${baseName}.${format.extension}`, format.type);
    });
  }
  return {
    setResult(next, audioName) {
      result = next;
      baseName = audioName.replace(/\.[^.]+$/, '') || 'transcript';
      for (const format of FORMATS) format.button.disabled = !next;
    },
  };
}

function download(text: string, fileName: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const anchor = Object.assign(document.createElement('a'), { href: url, download: fileName });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
