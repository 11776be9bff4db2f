/**
 * Where `armorfeed log` writes: stdout or a file (created if missing, appended to,
 * mode 0644, like karmor's StrToFile). Lines are gathered per event-loop turn and
 * written in one call, because a write per event costs a syscall each at 10k+ ev/s.
 */
import * as fs from 'node:fs';
import type { Writable } from 'node:stream';
import { OutputError } from '../errors';

export type SinkState = 'blocked' | 'drained' | 'failed';

export class OutputSink {
  private pending: string[] = [];
  private scheduled = false;
  private blocked = false;
  /** Set when the reader went away (EPIPE) or the file failed; later writes are dropped. */
  failed: Error | undefined;

  private constructor(
    readonly name: string,
    private readonly stream: Writable,
    private readonly ownsStream: boolean,
    /** Told when writes must stop (the stream's buffer is full), may go on, or failed for good. */
    private readonly onState: (state: SinkState) => void,
  ) {
    stream.on('error', (err: Error) => {
      // EPIPE (`| head`) or a failing disk: nothing more can be written, so the run ends.
      this.failed = err;
      this.pending = [];
      this.onState('failed');
    });
    stream.on('drain', () => {
      if (this.blocked) {
        this.blocked = false;
        this.onState('drained');
      }
    });
  }

  /** `stdout` or a file path; throws OutputError if the file cannot be opened. */
  static open(dest: string, onState: (state: SinkState) => void): OutputSink {
    if (dest === 'stdout') return new OutputSink(dest, process.stdout, false, onState);
    let fd: number;
    try {
      fd = fs.openSync(dest, 'a', 0o644);
    } catch (err) {
      throw new OutputError(`cannot open ${dest} for appending (${(err as Error).message}); check the path and its permissions`);
    }
    return new OutputSink(dest, fs.createWriteStream('', { fd }), true, onState);
  }

  write(text: string): void {
    if (this.failed !== undefined) return;
    this.pending.push(text);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flushPending());
    }
  }

  private flushPending(): void {
    this.scheduled = false;
    if (this.pending.length === 0 || this.failed !== undefined) return;
    const chunk = this.pending.join('');
    this.pending = [];
    if (!this.stream.write(chunk) && !this.blocked) {
      this.blocked = true;
      this.onState('blocked');
    }
  }

  /** Writes what is pending and waits until it reached the OS (file: closes it). */
  async close(): Promise<void> {
    this.flushPending();
    if (this.failed !== undefined) return;
    await new Promise<void>((resolve) => {
      if (this.ownsStream) this.stream.end(() => resolve());
      else this.stream.write('', () => resolve());
    });
  }
}
