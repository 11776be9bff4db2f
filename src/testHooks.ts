/**
 * Faults for tests of the supervision of threads (health, restart), and nothing else.
 * Off unless the process runs with ARMORFEED_TEST_HOOKS=1. Then:
 * - a socket or TCP frame holding exactly one of the msgpack strings TEST_HOOK_CRASH or
 *   TEST_HOOK_WEDGE makes the ingest thread that reads it crash (an uncaught exception)
 *   or wedge (spin forever without yielding), as a thread with a bug would;
 * - an event holding the string TEST_HOOK_WEDGE_ENCODER anywhere makes the encoder
 *   thread that encodes it spin;
 * - an exported Alert or Log holding the string TEST_HOOK_CRASH_EXPORT anywhere makes the export
 *   thread crash (an uncaught exception);
 * - an event holding the string TEST_HOOK_CRASH_RELAY anywhere makes the relay's JetStream
 *   thread crash before it posts the batch holding it; only the first such thread does (the
 *   one started after it reads the same message again, and goes on); TEST_HOOK_POISON_RELAY
 *   makes every one crash on it (a crash loop, which the restart limit ends);
 * - a Watch* call with request metadata `x-armorfeed-test-hook: stall-main:MS` blocks
 *   the main thread for MS milliseconds.
 * Without the variable these are ordinary input (a frame that is not a map is malformed).
 */
import { pack } from 'msgpackr';
import { forEachRecord } from './ring';

export const testHooksEnabled = process.env.ARMORFEED_TEST_HOOKS === '1';

export const TEST_HOOK_CRASH = 'armorfeed-test-hook:crash';
export const TEST_HOOK_WEDGE = 'armorfeed-test-hook:wedge';
export const TEST_HOOK_WEDGE_ENCODER = 'armorfeed-test-hook:wedge-encoder';
export const TEST_HOOK_CRASH_EXPORT = 'armorfeed-test-hook:crash-export';
export const TEST_HOOK_CRASH_RELAY = 'armorfeed-test-hook:crash-relay';
export const TEST_HOOK_POISON_RELAY = 'armorfeed-test-hook:poison-relay';

const crash = pack(TEST_HOOK_CRASH);
const wedge = pack(TEST_HOOK_WEDGE);

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function spin(): never {
  for (;;) {
    // Spins without yielding: timers (the heartbeat) never run again in this thread.
  }
}

/** With the hooks on, spins when a record of the span holds TEST_HOOK_WEDGE_ENCODER (encoder threads). */
export function runEncoderTestHook(ring: SharedArrayBuffer, span: { start: number; end: number }): void {
  if (!testHooksEnabled) return;
  forEachRecord(ring, span, (payload) => {
    if (Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).includes(TEST_HOOK_WEDGE_ENCODER)) spin();
  });
}

/** With the hooks on, throws (outside any handler) when `bytes` hold TEST_HOOK_CRASH_EXPORT (the export thread). */
export function runExportTestHook(bytes: Uint8Array): void {
  if (!testHooksEnabled || !Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(TEST_HOOK_CRASH_EXPORT)) return;
  setImmediate(() => {
    throw new Error(`${TEST_HOOK_CRASH_EXPORT} (ARMORFEED_TEST_HOOKS=1)`);
  });
}

/**
 * With the hooks on, in a relay JetStream thread: when `bytes` hold TEST_HOOK_POISON_RELAY,
 * or TEST_HOOK_CRASH_RELAY in the first thread (`generation` 0), throws (outside any
 * handler) and returns true: the batch is not posted.
 */
export function runRelayTestHook(bytes: Uint8Array, generation: number): boolean {
  if (!testHooksEnabled) return false;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hook = b.includes(TEST_HOOK_POISON_RELAY) ? TEST_HOOK_POISON_RELAY : generation === 0 && b.includes(TEST_HOOK_CRASH_RELAY) ? TEST_HOOK_CRASH_RELAY : undefined;
  if (hook === undefined) return false;
  setImmediate(() => {
    throw new Error(`${hook} (ARMORFEED_TEST_HOOKS=1)`);
  });
  return true;
}

export const TEST_HOOK_METADATA_KEY = 'x-armorfeed-test-hook';

/** With the hooks on, `stall-main:MS` blocks the calling (main) thread for MS ms. */
export function runMainTestHook(value: string): void {
  const m = /^stall-main:(\d+)$/.exec(value);
  if (!testHooksEnabled || m === null) return;
  const until = performance.now() + Number(m[1]);
  while (performance.now() < until) {
    // Blocks the event loop, as a long synchronous task would.
  }
}

/** With the hooks on, acts on a hook frame (crash throws; wedge never returns). */
export function runTestHook(frame: Uint8Array): void {
  if (!testHooksEnabled || frame.length > 64) return;
  if (equal(frame, crash)) throw new Error(`${TEST_HOOK_CRASH} (ARMORFEED_TEST_HOOKS=1)`);
  if (equal(frame, wedge)) spin();
}
