/**
 * KubeArmor's timestamps: `Timestamp` is Unix seconds (int64) and `UpdatedTime`
 * is UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`, always six fractional digits, taken together.
 */

function pad(n: number, width: number): string {
  return n.toString().padStart(width, '0');
}

// Events stamped on arrival come in runs within the same second: the date part is
// formatted once per second (a Date and six pads per event were ~0.2 us of the encoder's
// time per event on the socket path, where producers leave UpdatedTime to the feeder).
let cachedSecond = Number.NaN;
let cachedPrefix = '';

/** Formats epoch microseconds as upstream's UpdatedTime. */
export function formatUpdatedTime(epochMicros: number): string {
  const us = Math.floor(epochMicros);
  const second = Math.floor(us / 1e6);
  if (second !== cachedSecond) {
    const d = new Date(second * 1000);
    cachedPrefix =
      `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
      `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.`;
    cachedSecond = second;
  }
  return `${cachedPrefix}${pad(us - second * 1e6, 6)}Z`;
}

/** Wall clock in epoch microseconds, with sub-millisecond precision. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

const updatedTimeLayout = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

/** Parses an UpdatedTime (any fraction length, UTC `Z`) back to epoch microseconds; NaN if it is not one. */
export function parseUpdatedTime(s: string): number {
  const m = updatedTimeLayout.exec(s);
  if (m === null) return Number.NaN;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  const frac = (m[7] ?? '').padEnd(6, '0').slice(0, 6);
  return ms * 1000 + Number(frac);
}
