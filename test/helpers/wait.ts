/**
 * Bounded waits shared by the tests: every wait names what it waits for and fails
 * after a deadline, so a stuck test says why instead of hitting the runner's timeout.
 */

/** Resolves after `ms`: the one sleep every test file wrote for itself. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface PollOptions {
  timeoutMs: number;
  /** Pause between two checks. */
  intervalMs: number;
  /** Appended (after a space) to the timeout message, e.g. the last stats seen. */
  detail?: () => string | Promise<string>;
}

/** Polls `cond` until it holds; rejects naming `what` once `timeoutMs` has passed. */
export async function pollUntil(what: string, cond: () => boolean | Promise<boolean>, opts: PollOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) {
      const detail = opts.detail === undefined ? '' : ` ${await opts.detail()}`;
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${detail}`);
    }
    await delay(opts.intervalMs);
  }
}

/** The in-process feeder tests' wait: checks every 5 ms, 5 s unless told. */
export function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  return pollUntil(what, cond, { timeoutMs, intervalMs: 5 });
}

/** The serve-process tests' wait: checks every 20 ms (each check may be a GET /stats) and can add a detail. */
export function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number, detail: () => string | Promise<string> = () => ''): Promise<void> {
  return pollUntil(what, cond, { timeoutMs, intervalMs: 20, detail });
}

/**
 * Resolves or rejects as `p` does, or rejects naming `what` once `ms` has passed; the
 * timer is cleared either way. A rejection that is not an Error is wrapped in one.
 */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); })]);
  } catch (err: unknown) {
    throw err instanceof Error ? err : new Error(String(err));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Resolves with `p`'s value, or with undefined once `ms` has passed (a wait whose
 * timeout is an answer, not a failure: "did it exit by itself?"). The timer is cleared
 * either way; a rejection of `p` passes through.
 */
export async function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
