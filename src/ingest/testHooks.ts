/**
 * Faults for tests of the supervision of ingest threads (health, restart), and nothing
 * else. Off unless the process runs with ARMORFEED_TEST_HOOKS=1: then a socket or TCP
 * frame holding exactly one of these msgpack strings makes the ingest thread that reads
 * it crash (an uncaught exception) or wedge (spin forever without yielding), as a
 * thread with a bug would. Without the variable such a frame is an ordinary malformed
 * event (not a map).
 */
import { pack } from 'msgpackr';

export const testHooksEnabled = process.env.ARMORFEED_TEST_HOOKS === '1';

export const TEST_HOOK_CRASH = 'armorfeed-test-hook:crash';
export const TEST_HOOK_WEDGE = 'armorfeed-test-hook:wedge';

const crash = pack(TEST_HOOK_CRASH);
const wedge = pack(TEST_HOOK_WEDGE);

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** With the hooks on, acts on a hook frame (crash throws; wedge never returns). */
export function runTestHook(frame: Uint8Array): void {
  if (!testHooksEnabled || frame.length > 64) return;
  if (equal(frame, crash)) throw new Error(`${TEST_HOOK_CRASH} (ARMORFEED_TEST_HOOKS=1)`);
  if (equal(frame, wedge)) {
    for (;;) {
      // Spins without yielding: timers (the heartbeat) never run again in this thread.
    }
  }
}
