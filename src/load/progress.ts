/**
 * A one-line live status on a terminal (rewritten in place with \r), nothing
 * otherwise: logs and CI output stay clean.
 */
import type { LoadProgress } from './run-load';

const barWidth = 24;

export function formatProgress(p: LoadProgress): string {
  const filled = Math.round(p.fraction * barWidth);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}`;
  const pct = `${Math.round(p.fraction * 100)}`.padStart(3);
  const rate = p.elapsedSec > 0 ? Math.round(p.sent / p.elapsedSec) : 0;
  return (
    `[${bar}] ${pct}% ${p.phase} ${p.elapsedSec.toFixed(1)}/${p.plannedSec.toFixed(0)}s` +
    ` sent ${p.sent} (${rate}/s) recv ${p.receivedMin}..${p.receivedMax}` +
    (p.serverDropped !== null ? ` broker drops ${p.serverDropped}` : '')
  );
}

export class ProgressLine {
  private active = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  update(p: LoadProgress): void {
    if (!this.enabled) return;
    this.active = true;
    this.stream.write(`\r${formatProgress(p).slice(0, (this.stream.columns ?? 120) - 1)}\x1b[K`);
  }

  /** Clears the line so the next output starts on a clean row. */
  clear(): void {
    if (this.active) this.stream.write('\r\x1b[K');
    this.active = false;
  }
}
