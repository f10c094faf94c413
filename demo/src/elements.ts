/** The page's elements by role, looked up once; index.html is the single source of their ids. */
const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`demo/index.html has no #${id}`);
  return element as T;
};

export const elements = {
  model: {
    form: byId<HTMLFormElement>('model-form'),
    preset: byId<HTMLSelectElement>('model-preset'),
    source: byId<HTMLInputElement>('model-source'),
    backend: byId<HTMLSelectElement>('model-backend'),
    folder: byId<HTMLInputElement>('model-folder'),
    files: byId<HTMLInputElement>('model-files'),
    progress: byId<HTMLProgressElement>('model-progress'),
    fileProgress: byId<HTMLUListElement>('model-files-progress'),
    status: byId<HTMLParagraphElement>('model-status'),
  },
  cache: {
    storage: byId<HTMLParagraphElement>('storage-status'),
    list: byId<HTMLUListElement>('cached-models'),
  },
  input: {
    file: byId<HTMLInputElement>('audio-file'),
    dropZone: byId<HTMLDivElement>('drop-zone'),
    urlForm: byId<HTMLFormElement>('url-form'),
    url: byId<HTMLInputElement>('audio-url'),
    urlButton: byId<HTMLButtonElement>('transcribe-url'),
    cancel: byId<HTMLButtonElement>('cancel'),
    detected: byId<HTMLParagraphElement>('detected-language'),
    status: byId<HTMLParagraphElement>('transcribe-status'),
    player: byId<HTMLAudioElement>('player'),
  },
  options: {
    language: byId<HTMLSelectElement>('opt-language'),
    task: byId<HTMLSelectElement>('opt-task'),
    timestamps: byId<HTMLSelectElement>('opt-timestamps'),
    beam: byId<HTMLInputElement>('opt-beam'),
    prompt: byId<HTMLInputElement>('opt-prompt'),
  },
  transcript: {
    segments: byId<HTMLOListElement>('segments'),
    txt: byId<HTMLButtonElement>('export-txt'),
    srt: byId<HTMLButtonElement>('export-srt'),
    vtt: byId<HTMLButtonElement>('export-vtt'),
    json: byId<HTMLButtonElement>('export-json'),
  },
  dictation: {
    button: byId<HTMLButtonElement>('dictate'),
    copy: byId<HTMLButtonElement>('dictation-copy'),
    clear: byId<HTMLButtonElement>('dictation-clear'),
    status: byId<HTMLParagraphElement>('dictation-status'),
    confirmed: byId<HTMLSpanElement>('dictation-confirmed'),
    tentative: byId<HTMLSpanElement>('dictation-tentative'),
  },
  device: {
    backend: byId<HTMLParagraphElement>('device-backend'),
    profile: byId<HTMLDivElement>('device-profile'),
    plan: byId<HTMLDivElement>('device-plan'),
    benchmark: byId<HTMLButtonElement>('benchmark'),
    benchmarkStatus: byId<HTMLParagraphElement>('benchmark-status'),
    chart: byId<HTMLElement>('benchmark-chart'),
  },
};
