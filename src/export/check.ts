/**
 * `armorfeed export-check`: the export's start-up, once, with a report: connect, check or
 * create the stream, publish one daemon Message the way `serve` would (same subject
 * scheme, same headers) and read it back from the stream by its sequence number.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { ExportCheckError, ExportStreamError, ExportUnreachableError } from '../errors';
import { feederTypes, type DaemonMessage } from '../wire/proto';
import { formatUpdatedTime, nowMicros } from '../wire/time';
import { connectionOptions } from './connection';
import type { ExportSettings } from './exporter';
import { describeStream, ensureStream, isTransient, streamSettingsFor } from './stream';
import { exportHeaders, makeNodeId, msgId, subjectsFor } from './subjects';

export interface ExportCheckReport {
  server: string;
  stream: string;
  created: boolean;
  /** The stream's settings and state, as describeStream prints them. */
  streamSettings: string;
  subject: string;
  msgId: string;
  pubAck: { stream: string; seq: number; duplicate: boolean };
  readBack: { subject: string; headers: Record<string, string>; bytes: number; message: Record<string, unknown> };
  elapsedMs: number;
}

export async function exportCheck(settings: ExportSettings, timeoutMs = 10_000): Promise<ExportCheckReport> {
  const started = Date.now();
  let nc: NatsConnection;
  try {
    nc = await connect({ ...connectionOptions(settings, `armorfeed export-check ${settings.host}`), reconnect: false, timeout: timeoutMs });
  } catch (err) {
    throw new ExportUnreachableError(settings.export, err instanceof Error ? err.message : String(err));
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    const check = await ensureStream(jsm, streamSettingsFor(settings)).catch((err: unknown) => {
      throw isTransient(err) ? new ExportStreamError(settings.exportStream, `JetStream did not answer in time (${(err as Error).message}); try again`) : err;
    });

    const { Message } = feederTypes();
    const us = nowMicros();
    const message: DaemonMessage = {
      Timestamp: Math.floor(us / 1e6),
      UpdatedTime: formatUpdatedTime(us),
      ClusterName: settings.cluster,
      HostName: settings.host,
      Type: 'Message',
      Level: 'INFO',
      Message: `armorfeed export-check from ${settings.host}`,
    };
    const payload = Message.encode(message).finish();
    const nodeId = makeNodeId(settings.host);
    const subject = subjectsFor(settings.exportSubjectPrefix, settings.cluster, settings.host).messages;
    const ack = await jetstream(nc, { timeout: timeoutMs })
      .publish(subject, payload, { headers: exportHeaders(nodeId, 'messages', 1, message.UpdatedTime ?? '') })
      .catch((err: unknown) => {
        throw new ExportCheckError(`publishing to ${subject} was not acknowledged: ${err instanceof Error ? err.message : String(err)}`);
      });
    if (ack.stream !== settings.exportStream) {
      throw new ExportCheckError(`${subject} was stored by stream ${ack.stream}, not ${settings.exportStream}: another stream takes these subjects`);
    }
    const stored = await jsm.streams.getMessage(settings.exportStream, { seq: ack.seq }).catch((err: unknown) => {
      throw new ExportCheckError(`reading back ${settings.exportStream} #${ack.seq}: ${err instanceof Error ? err.message : String(err)}`);
    });
    if (stored === null) throw new ExportCheckError(`${settings.exportStream} #${ack.seq} was acknowledged but is not in the stream`);
    if (Buffer.compare(Buffer.from(stored.data), Buffer.from(payload)) !== 0) {
      throw new ExportCheckError(`${settings.exportStream} #${ack.seq} reads back with other bytes than were published`);
    }
    const headers: Record<string, string> = {};
    for (const key of stored.header.keys()) headers[key] = stored.header.get(key);
    return {
      server: nc.getServer(),
      stream: settings.exportStream,
      created: check.created,
      streamSettings: describeStream(check.info),
      subject,
      msgId: msgId(nodeId, 'messages', 1),
      pubAck: { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate },
      readBack: {
        subject: stored.subject,
        headers,
        bytes: stored.data.length,
        message: Message.toObject(Message.decode(stored.data), { longs: Number }) as Record<string, unknown>,
      },
      elapsedMs: Date.now() - started,
    };
  } finally {
    await nc.close().catch(() => undefined);
  }
}
