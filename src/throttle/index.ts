/**
 * The feeder's user-space alert throttle (kubearmor-wire.md 2.6), all of it:
 *
 *   which alerts   throttleBucket(): eligibility and bucket key, read from the scanned
 *                  event in the encoder (worker or main thread)
 *   what to do     AlertThrottle.check(): Pass, Drop or Notice, per bucket, in the
 *                  fan-out on the main thread, in ring order
 *   the notice     AlertThrottle.thresholdNotice(): the crossing alert rewritten as the
 *                  AlertThreshold SystemEvent, every other field kept
 *
 * Buckets are containers; host events share the '' bucket. Upstream's state machine,
 * quirks kept: the throttle period runs from the start of the 1-second window, and the
 * alert that crosses the threshold is not dropped but becomes the AlertThreshold notice.
 */
import { ascii, K, readStr, strEquals } from '../event/scan';
import { feederTypes, type AlertMessage } from '../wire/proto';
import { frameMessage } from '../wire/framing';

export interface ThrottleSettings {
  enabled: boolean;
  maxAlertPerSec: number;
  throttleSec: number;
}

/** The notice's Type and Operation (server-side filters see these, not the alert's). */
export const NOTICE_TYPE = 'SystemEvent';
export const NOTICE_OPERATION = 'AlertThreshold';

/** throttleBucket()'s answer for an alert the throttle does not apply to. */
export const NOT_THROTTLED = -2;

const MatchedHostPolicy = ascii('MatchedHostPolicy');
const AppArmor = ascii('AppArmor');
const eBPFMonitor = ascii('eBPF Monitor');
const Audit = ascii('Audit');

/**
 * For a scanned alert: the tape position of its bucket key (containerID; -1 when absent,
 * the host bucket ''), or NOT_THROTTLED. Upstream throttles eBPF Monitor alerts whose
 * Action contains Audit, and host-policy alerts from AppArmor or the eBPF monitor;
 * BPFLSM enforcement (Block) never.
 */
export function throttleBucket(buf: Uint8Array, tape: Int32Array): number {
  const enforcer = tape[K.enforcer];
  const eligible =
    (strEquals(buf, enforcer, eBPFMonitor) && contains(buf, tape[K.action], Audit)) ||
    (strEquals(buf, tape[K.type], MatchedHostPolicy) && (strEquals(buf, enforcer, AppArmor) || strEquals(buf, enforcer, eBPFMonitor)));
  return eligible ? tape[K.containerID] : NOT_THROTTLED;
}

const scratch = { start: 0, length: 0 };

/** True when the string at `pos` contains `needle`. */
function contains(buf: Uint8Array, pos: number, needle: Uint8Array): boolean {
  if (pos < 0 || !readStr(buf, pos, scratch)) return false;
  const { start, length } = scratch;
  outer: for (let i = start; i + needle.length <= start + length; i++) {
    for (let j = 0; j < needle.length; j++) if (buf[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
export const enum ThrottleDecision {
  Pass = 0,
  Drop = 1,
  Notice = 2,
}

interface Bucket {
  count: number;
  windowStartUs: number;
  throttled: boolean;
}

export class AlertThrottle {
  private readonly buckets = new Map<string, Bucket>();
  readonly maxAlertPerSec: number;
  readonly throttleSec: number;

  constructor(settings: Omit<ThrottleSettings, 'enabled'>) {
    this.maxAlertPerSec = settings.maxAlertPerSec;
    this.throttleSec = settings.throttleSec;
  }

  check(key: string, nowUs: number): ThrottleDecision {
    const b = this.buckets.get(key);
    if (b === undefined) {
      this.buckets.set(key, { count: 1, windowStartUs: nowUs, throttled: false });
      return this.maxAlertPerSec < 1 ? this.cross(this.buckets.get(key) as Bucket) : ThrottleDecision.Pass;
    }
    const sinceStart = nowUs - b.windowStartUs;
    if (b.throttled && sinceStart < this.throttleSec * 1e6) return ThrottleDecision.Drop;
    if (sinceStart >= 1e6) {
      b.windowStartUs = nowUs;
      b.count = 1;
      b.throttled = false;
    } else {
      b.count++;
    }
    return b.count > this.maxAlertPerSec ? this.cross(b) : ThrottleDecision.Pass;
  }

  private cross(b: Bucket): ThrottleDecision {
    b.count = 0;
    b.throttled = true;
    return ThrottleDecision.Notice;
  }

  /**
   * The AlertThreshold notice for the alert that crossed (`body`: its protobuf, no frame
   * header), framed. Rare (once per bucket and window), so it is decoded, changed and
   * re-encoded with protobufjs rather than burdening the encoders.
   */
  thresholdNotice(body: Uint8Array): Buffer {
    const { Alert } = feederTypes();
    const alert = Alert.decode(body) as unknown as AlertMessage;
    alert.Type = NOTICE_TYPE;
    alert.Operation = NOTICE_OPERATION;
    alert.MaxAlertsPerSec = this.maxAlertPerSec;
    alert.DroppingAlertsInterval = this.throttleSec;
    return frameMessage(Alert.encode(alert).finish());
  }

  /** Forgets a bucket (upstream: DeleteAlertMapKey when the container goes away). */
  forget(key: string): void {
    this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }
}
