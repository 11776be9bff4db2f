/**
 * JSON lines from a file or stdin: LineReader cuts decoded text into lines and refuses
 * (once) a line longer than the limit, skipping it up to its newline.
 *
 * A line split over many reads is kept as its pieces and their byte count, and joined
 * once when its newline arrives: growing one string and measuring it on every read cost
 * time quadratic in the line (a 1 MiB line in 16-byte reads: ~25 s of the ingest thread).
 */
export class LineReader {
  private pieces: string[] = [];
  private pieceBytes = 0;
  private discarding = false;

  constructor(private readonly maxLineBytes: number) {}

  /** Feeds decoded text; calls `onLine` for each complete line, `onOversized` once per line over the limit. */
  push(text: string, onLine: (line: string) => void, onOversized: () => void): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      const tail = text.slice(start, nl);
      start = nl + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      onLine(this.take(tail));
    }
    if (start === text.length || this.discarding) return;
    const rest = text.slice(start);
    this.pieces.push(rest);
    this.pieceBytes += Buffer.byteLength(rest);
    if (this.pieceBytes > this.maxLineBytes) {
      onOversized();
      this.take('');
      this.discarding = true;
    }
  }

  /** At the end of the input: the last line, if it had no newline. */
  end(onLine: (line: string) => void): void {
    const last = this.take('');
    if (last.trim() !== '' && !this.discarding) onLine(last);
    this.discarding = false;
  }

  /** The line held so far followed by `tail`; starts a new one. */
  private take(tail: string): string {
    if (this.pieces.length === 0) return tail;
    this.pieces.push(tail);
    const line = this.pieces.join('');
    this.pieces = [];
    this.pieceBytes = 0;
    return line;
  }
}
