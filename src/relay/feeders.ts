/**
 * Which feeders the relay dials: `--feeders HOST:PORT,...`, or a file naming them (one
 * per line or comma-separated, `#` comments), re-read when it changes so nodes can be
 * added and removed while the relay runs (a ConfigMap, a file kept by a discovery job).
 *
 * The file is polled (stat every FEEDERS_POLL_MS) rather than watched with inotify: a
 * mounted ConfigMap is replaced by swapping a symlink, which an inotify watch on the old
 * file never sees. A file that becomes unreadable or holds a bad line is reported and the
 * list in use is kept: a half-written edit must not disconnect the cluster.
 */
import * as fs from 'node:fs';
import { ConfigError } from '../errors';

export const FEEDERS_POLL_MS = 1000;

const hostPort = /^(\[[0-9a-fA-F:.%\w]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/;

function isHostPort(value: string): boolean {
  const m = hostPort.exec(value);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}

export type FeedersSource = { kind: 'list'; targets: string[] } | { kind: 'file'; path: string; targets: string[] };

/** The targets in a list or a file's text; throws ConfigError naming the first bad entry. */
export function parseFeedersText(text: string, where: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '');
    for (const item of line.split(',')) {
      const target = item.trim();
      if (target === '') continue;
      if (!isHostPort(target)) throw new ConfigError('feeders', `${where}: ${JSON.stringify(target)} is not HOST:PORT`);
      if (!out.includes(target)) out.push(target);
    }
  }
  return out;
}

/** Reads the --feeders value: a list when every item is HOST:PORT, otherwise a file that must be readable now. */
export function parseFeedersOption(value: string): FeedersSource {
  const trimmed = value.trim();
  if (trimmed === '') throw new ConfigError('feeders', 'is required: HOST:PORT,... of the feeders to relay, or a file listing them');
  const items = trimmed.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.every(isHostPort)) return { kind: 'list', targets: [...new Set(items)] };
  let text: string;
  try {
    text = fs.readFileSync(trimmed, 'utf8');
  } catch (err) {
    throw new ConfigError('feeders', `${JSON.stringify(trimmed)} is neither HOST:PORT,... nor a readable file (${(err as Error).message})`, 'ERR_CONFIG_FILE');
  }
  return { kind: 'file', path: trimmed, targets: parseFeedersText(text, trimmed) };
}

/** Polls a feeders file and calls `onChange` with the new list whenever its content changes. */
export class FeedersFile {
  private last: string;
  private polling = false;

  constructor(
    private readonly path: string,
    initial: readonly string[],
    private readonly onChange: (targets: string[]) => void,
    private readonly onProblem: (message: string) => void,
  ) {
    this.last = initial.join(',');
  }

  start(): void {
    fs.watchFile(this.path, { interval: FEEDERS_POLL_MS, persistent: false }, () => this.reread());
    this.polling = true;
  }

  stop(): void {
    if (this.polling) fs.unwatchFile(this.path);
    this.polling = false;
  }

  private reread(): void {
    let targets: string[];
    try {
      targets = parseFeedersText(fs.readFileSync(this.path, 'utf8'), this.path);
    } catch (err) {
      const detail = err instanceof ConfigError ? err.message : `cannot read ${this.path}: ${(err as Error).message}`;
      this.onProblem(`${detail}; keeping the ${this.last.split(',').filter((s) => s !== '').length} upstreams in use`);
      return;
    }
    const key = targets.join(',');
    if (key === this.last) return;
    this.last = key;
    this.onChange(targets);
  }
}
