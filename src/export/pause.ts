/**
 * A sleep that can be cut short: the export's and the JetStream relay's retry loops wait
 * with it, and their close() wakes them at once instead of after the retry delay.
 */
export class WakeableSleep {
  private waker: (() => void) | undefined;

  /** Resolves after `ms`, or as soon as wake() is called. The timer keeps no process alive. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref();
      this.waker = done;
    });
  }

  wake(): void {
    this.waker?.();
  }
}

/** A wait that `fire()` ends with true, or `deadline` (performance.now() ms) with false: the warm-ups' rounds. */
export function deadlineSignal(deadline: number): { settled: Promise<boolean>; fire: () => void } {
  let fire: () => void = () => undefined;
  const settled = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, deadline - performance.now()));
    fire = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
  return { settled, fire };
}
