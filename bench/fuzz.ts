/**
 * The long fuzz run of the ingest path: the property of test/helpers/fuzz-property.ts
 * (FrameReader, scanner, span encoder) over generated frames until --frames of them have
 * been judged.
 *
 *   npm run fuzz -- --frames 1000000 [--seed N] [--max-case-ms 2000]
 *   node dist/bench/fuzz.js --frames 1000000
 *
 * Prints the number of frames, the time, what became of them (accepted alerts/logs,
 * rejections by reason, framing errors by code) and exits 1 on a property failure, with
 * the shrunk counterexample and the seed that replays it. About 5,000 frames/s on the
 * 2-core development machine.
 */
import fc from 'fast-check';
import { checkFrameSplit, checkFrameStream, chunkedStream, anyPayload, FuzzHarness, lengthPrefixCase, SMALL_FRAME_LIMIT, splitCase } from '../test/helpers/fuzz-property';

interface Options {
  frames: number;
  seed: number;
  maxCaseMs: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { frames: 1_000_000, seed: Date.now() % 2 ** 31, maxCaseMs: 2000 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${argv[i]} needs a non-negative integer, got ${argv[i + 1]}`);
    if (argv[i] === '--frames') options.frames = value;
    else if (argv[i] === '--seed') options.seed = value;
    else if (argv[i] === '--max-case-ms') options.maxCaseMs = value;
    else throw new Error(`unknown option ${argv[i]} (--frames N, --seed N, --max-case-ms N)`);
  }
  return options;
}

type FuzzCase =
  | { kind: 'payload'; payload: Uint8Array }
  | { kind: 'stream'; chunks: Uint8Array[] }
  | { kind: 'split'; payloads: Uint8Array[]; cuts: number[] }
  | { kind: 'prefix'; bytes: Uint8Array; cuts: number[] };

/** Mostly single payloads; a stream, a split and a length-prefix case now and then. */
const fuzzCase: fc.Arbitrary<FuzzCase> = fc.oneof(
  { weight: 16, arbitrary: anyPayload.map((payload) => ({ kind: 'payload' as const, payload })) },
  { weight: 2, arbitrary: chunkedStream.map((chunks) => ({ kind: 'stream' as const, chunks })) },
  { weight: 1, arbitrary: splitCase.map(([payloads, cuts]) => ({ kind: 'split' as const, payloads, cuts })) },
  { weight: 1, arbitrary: lengthPrefixCase.map(([bytes, cuts]) => ({ kind: 'prefix' as const, bytes, cuts })) },
);

const ROUND = 20_000;

function main(): number {
  const options = parseArgs(process.argv.slice(2));
  const harness = new FuzzHarness({ maxCaseMs: options.maxCaseMs });
  let frameReaderCases = 0;
  const property = fc.property(fuzzCase, (c) => {
    switch (c.kind) {
      case 'payload': harness.checkPayload(c.payload); break;
      case 'stream': harness.checkStream(c.chunks); break;
      case 'split': frameReaderCases++; checkFrameSplit(c.payloads, c.cuts, SMALL_FRAME_LIMIT); break;
      case 'prefix': frameReaderCases++; checkFrameStream(c.bytes, c.cuts, SMALL_FRAME_LIMIT); break;
    }
  });
  const started = performance.now();
  let lastReport = started;
  try {
    for (let round = 0; harness.tally.frames < options.frames; round++) {
      const seed = (options.seed + round) | 0;
      const run = fc.check(property, { numRuns: ROUND, seed });
      if (run.failed) {
        process.stderr.write(
          `fuzz: PROPERTY FAILED after ${harness.tally.frames} frames (seed ${seed}, path ${run.counterexamplePath ?? '?'})\n` +
            `  ${run.errorInstance instanceof Error ? `${run.errorInstance.name}: ${run.errorInstance.message}` : String(run.errorInstance)}\n` +
            `  counterexample: ${fc.stringify(run.counterexample)}\n`,
        );
        return 1;
      }
      if (performance.now() - lastReport > 15_000) {
        lastReport = performance.now();
        process.stderr.write(`fuzz: ${harness.tally.frames} frames, ${((lastReport - started) / 1000).toFixed(0)} s\n`);
      }
    }
  } finally {
    harness.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const t = harness.tally;
  const rejected = Object.values(t.rejected).reduce((a, b) => a + b, 0);
  const rows = (counts: Record<string, number>): string =>
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([k, n]) => `    ${k.padEnd(26)} ${String(n).padStart(9)}`)
      .join('\n');
  process.stdout.write(
    `fuzz: ${t.frames} frames in ${seconds.toFixed(1)} s (${Math.round(t.frames / seconds)}/s), seed ${options.seed}, property held\n` +
      `  accepted                     ${String(t.alerts + t.logs).padStart(9)}  (alerts ${t.alerts}, logs ${t.logs})\n` +
      `  rejected, counted by reason  ${String(rejected).padStart(9)}\n${rows(t.rejected)}\n` +
      `  streams through FrameReader  ${String(t.streams).padStart(9)}  (framing errors, peer hung up: ${Object.entries(t.framing).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})\n` +
      `  FrameReader-only cases       ${String(frameReaderCases).padStart(9)}\n` +
      `  slowest case                 ${t.slowestCaseMs.toFixed(1).padStart(9)} ms\n`,
  );
  return 0;
}

process.exitCode = main();
