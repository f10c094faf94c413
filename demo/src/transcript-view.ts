/**
 * The transcript as it arrives: one list item per segment with its times, words as buttons that
 * seek the player when word timestamps are on, and the word being played highlighted.
 */
import type { TranscriptionSegment } from '../../src/core/transcriber.ts';

/** m:ss.ss */
export function clock(seconds: number): string {
  return `${Math.floor(seconds / 60)}:${(seconds % 60).toFixed(2).padStart(5, '0')}`;
}

export class TranscriptView {
  private words: { start: number; end: number; element: HTMLElement }[] = [];
  private current: HTMLElement | undefined;

  constructor(
    private readonly list: HTMLOListElement,
    private readonly player: HTMLAudioElement,
  ) {
    player.addEventListener('timeupdate', () => this.highlight(player.currentTime));
    list.addEventListener('click', (event) => {
      const target = (event.target as HTMLElement).closest<HTMLElement>('[data-start]');
      if (!target) return;
      player.currentTime = Number(target.dataset.start);
      void player.play().catch(() => {});
    });
  }

  clear(): void {
    this.list.replaceChildren();
    this.words = [];
    this.current = undefined;
  }

  add(segment: TranscriptionSegment): void {
    const item = document.createElement('li');
    const time = document.createElement('button');
    time.type = 'button';
    time.className = 'time';
    time.dataset.start = String(segment.start);
    time.textContent = `${clock(segment.start)} → ${clock(segment.end)}`;
    time.setAttribute('aria-label', `Play from ${clock(segment.start)}`);
    const text = document.createElement('span');
    text.className = 'text';
    if (segment.words && segment.words.length > 0) {
      segment.words.forEach((word, index) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'word';
        button.dataset.start = String(word.start);
        button.title = `${clock(word.start)} (p ${word.probability.toFixed(2)})`;
        button.textContent = index === 0 ? word.word.trimStart() : word.word;
        text.append(button);
        this.words.push({ start: word.start, end: word.end, element: button });
      });
    } else {
      text.textContent = segment.text.trim();
    }
    item.append(time, ' ', text);
    this.list.append(item);
  }

  private highlight(time: number): void {
    const word = this.words.find((w) => time >= w.start && time < w.end)?.element;
    if (word === this.current) return;
    this.current?.classList.remove('current');
    this.current?.removeAttribute('aria-current');
    word?.classList.add('current');
    word?.setAttribute('aria-current', 'true');
    this.current = word;
  }
}
