/**
 * Property-based fuzzing of the ingest path (test/helpers/fuzz-property.ts says what
 * holds): FrameReader, the scanner (Admission.admitFrame) and the span encoder, with a
 * bounded number of cases so that CI stays under ~20 s. The long run is `npm run fuzz`
 * (bench/fuzz.ts). A failure prints fast-check's seed and the shrunk counterexample;
 * FUZZ_SEED=<seed> replays a run.
 */
import { strict as assert } from 'node:assert';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  anyPayload, checkFrameSplit, checkFrameStream, chunkedStream, FuzzHarness, lengthPrefixCase, mutatedEvent, randomPayload, SMALL_FRAME_LIMIT, splitCase, structuredEvent,
} from './helpers/fuzz-property';

const seed = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns, ...(seed === undefined ? {} : { seed }) });

describe('fuzz - ingest frames to protobuf', () => {
  // The CI bound: each generator gets a few thousand cases; the long run does a million.
  const harness = new FuzzHarness({ maxCaseMs: 10_000 });
  after(() => harness.close());

  test('fuzz - random bytes as a payload: a counted rejection, or an event that encodes to valid protobuf', () => {
    fc.assert(fc.property(randomPayload, (p) => harness.checkPayload(p)), params(3000));
  });

  test('fuzz - msgpack maps of the schema keys with values of any type', () => {
    const before = { ...harness.tally, rejected: { ...harness.tally.rejected } };
    fc.assert(fc.property(structuredEvent, (p) => harness.checkPayload(p)), params(3000));
    // The generator must reach the encoder for both streams and hit the main reasons, or the property proves little.
    assert.ok(harness.tally.alerts - before.alerts > 100, `alerts accepted: ${harness.tally.alerts - before.alerts}`);
    assert.ok(harness.tally.logs - before.logs > 100, `logs accepted: ${harness.tally.logs - before.logs}`);
    for (const reason of ['wrong_type', 'out_of_range', 'invalid_utf8', 'unknown_type', 'unknown_field', 'malformed_frame', 'too_deep']) {
      assert.ok((harness.tally.rejected[reason] ?? 0) > (before.rejected[reason] ?? 0), `no ${reason} rejection among ${JSON.stringify(harness.tally.rejected)}`);
    }
  });

  test('fuzz - synthetic events with bit flips, truncations and insertions', () => {
    fc.assert(fc.property(mutatedEvent, (p) => harness.checkPayload(p)), params(3000));
  });

  test('fuzz - streams of those frames in random chunks through FrameReader', () => {
    fc.assert(fc.property(chunkedStream, (chunks) => harness.checkStream(chunks)), params(400));
    assert.ok(Object.keys(harness.tally.framing).length > 0, 'no stream ever hit a framing error');
  });

  test('fuzz - any payload alone and as a one-frame stream end the same way', () => {
    fc.assert(fc.property(anyPayload, (p) => harness.checkPayload(p)), params(1000));
  });
});

describe('fuzz - FrameReader', () => {
  test('fuzz - any split of well-formed frames yields the same frames', () => {
    fc.assert(fc.property(splitCase, ([payloads, cuts]) => checkFrameSplit(payloads, cuts, SMALL_FRAME_LIMIT)), params(2000));
  });

  test('fuzz - random length prefixes: only InputError, bounded buffering, the same result in any split', () => {
    fc.assert(fc.property(lengthPrefixCase, ([bytes, cuts]) => checkFrameStream(bytes, cuts, SMALL_FRAME_LIMIT)), params(3000));
  });
});
