/**
 * Encoder worker (runs in a piscina thread). Turns a claimed ring span into one
 * EncodedBatch: decode msgpack, apply upstream's field rules, encode with protobufjs,
 * frame once. Reads the records in place from shared memory; the main thread releases
 * the span only after this task resolves.
 */
import { workerData } from 'node:worker_threads';
import { Unpackr } from 'msgpackr';
import type * as protobuf from 'protobufjs';
import { forEachRecord } from '../ring/consumer';
import { isAlert } from '../event/validate';
import { isThrottleEligible, toAlert, toLog } from '../event/toProto';
import { logLine } from '../event/logLine';
import type { IngestEvent } from '../event/schema';
import { feederTypes } from '../wire/proto';
import {
  GRPC_FRAME_HEADER,
  writeFrameHeader,
  type EncodeTask,
  type EncodedBatch,
  type EncodedStream,
  type EncoderSettings,
} from './batch';

const settings = (workerData as { encoder: EncoderSettings }).encoder;
const { Alert, Log } = feederTypes();
const unpackr = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: 'number' });

/** Grows a scratch buffer that lives as long as the worker: one per stream. */
class StreamBuilder {
  private buf = new Uint8Array(1 << 18);
  private len = 0;
  private ends: number[] = [];
  private times: number[] = [];
  private attrs: number[] = [];

  add(type: protobuf.Type, message: object, ingestedUs: number, ns: number, op: number, ty: number): void {
    const encoded = type.encode(message).finish();
    const need = this.len + GRPC_FRAME_HEADER + encoded.length;
    if (need > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < need) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    writeFrameHeader(this.buf, this.len, encoded.length);
    this.buf.set(encoded, this.len + GRPC_FRAME_HEADER);
    this.len = need;
    this.ends.push(need);
    this.times.push(ingestedUs);
    this.attrs.push(ns, op, ty);
  }

  take(): EncodedStream {
    const out: EncodedStream = {
      count: this.ends.length,
      bytes: this.buf.slice(0, this.len),
      ends: Uint32Array.from(this.ends),
      ingestedUs: Float64Array.from(this.times),
      attrs: Uint16Array.from(this.attrs),
    };
    this.len = 0;
    this.ends = [];
    this.times = [];
    this.attrs = [];
    return out;
  }
}

const alerts = new StreamBuilder();
const logs = new StreamBuilder();

export default function encodeSpan(task: EncodeTask): EncodedBatch {
  const strings: string[] = [];
  const stringIndex = new Map<string, number>();
  const intern = (s: string | undefined): number => {
    const v = s ?? '';
    let i = stringIndex.get(v);
    if (i === undefined) {
      i = strings.length;
      strings.push(v);
      stringIndex.set(v, i);
    }
    return i;
  };
  const throttleKeys: number[] = [];
  const lines: string[] = [];
  let failed = 0;
  let failure = '';

  forEachRecord(task.ring, task, (payload, ingestedUs) => {
    let event: IngestEvent;
    try {
      event = unpackr.unpack(payload) as IngestEvent;
    } catch (err) {
      failed++;
      failure = err instanceof Error ? err.message : String(err);
      return;
    }
    if (settings.logLines) lines.push(logLine(event, settings.host, ingestedUs));
    const ns = intern(event.namespaceName);
    const op = intern(event.operation);
    if (isAlert(event)) {
      const message = toAlert(event, settings, ingestedUs);
      alerts.add(Alert, message, ingestedUs, ns, op, intern(message.Type));
      throttleKeys.push(settings.throttling && isThrottleEligible(event) ? intern(event.containerID) : -1);
    } else {
      const message = toLog(event, settings, ingestedUs);
      logs.add(Log, message, ingestedUs, ns, op, intern(message.Type));
    }
  });

  return {
    alerts: alerts.take(),
    logs: logs.take(),
    throttleKeys: Int32Array.from(throttleKeys),
    strings,
    logLines: lines.length > 0 ? lines.join('\n') + '\n' : '',
    failed,
    failure,
  };
}

