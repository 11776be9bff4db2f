/**
 * Upstream's `logPath` output: none, stdout, or a file opened for append, receiving
 * one JSON line per alert and log (rendered by the encoders, written here in order).
 * A writer that cannot keep up does not stall the pipeline: past a bound, lines are
 * dropped and counted as output_backpressure.
 */
import * as fs from 'node:fs';
import { OutputError } from '../errors';

const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;

export class LogPathOutput {
  private readonly stream: NodeJS.WritableStream & { writableLength: number };
  dropped = 0;
  written = 0;

  private constructor(stream: NodeJS.WritableStream & { writableLength: number }, private readonly ownsStream: boolean) {
    this.stream = stream;
  }

  /** Opens the output; undefined for `none`. Fails at start-up, as upstream does. */
  static open(logPath: string): LogPathOutput | undefined {
    if (logPath === 'none') return undefined;
    if (logPath === 'stdout') return new LogPathOutput(process.stdout, false);
    let fd: number;
    try {
      fd = fs.openSync(logPath, 'a', 0o666);
    } catch (err) {
      throw new OutputError(`logPath ${logPath} cannot be opened for append: ${(err as Error).message}`);
    }
    return new LogPathOutput(fs.createWriteStream('', { fd }), true);
  }

  write(lines: string, count: number): void {
    if (this.stream.writableLength > MAX_BUFFERED_BYTES) {
      this.dropped += count;
      return;
    }
    this.written += count;
    this.stream.write(lines);
  }

  close(): Promise<void> {
    if (!this.ownsStream) return Promise.resolve();
    return new Promise((resolve) => this.stream.end(() => resolve()));
  }
}
