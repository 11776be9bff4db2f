/**
 * The JetStream stream the export writes to: created when missing (file storage, the
 * configured limits, discard old), used as it is when present, and refused with a clear
 * error when its subjects do not take ours. armorfeed never edits an existing stream: its
 * owner may have set limits, replicas or sources on purpose.
 */
import { DiscardPolicy, JetStreamApiCodes, JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { errors as natsErrors } from '@nats-io/transport-node';
import { ExportStreamError, ExportStreamMismatchError } from '../errors';
import type { ExportConfig } from './options';

export interface StreamSettings {
  name: string;
  /** `<prefix>.>`: every subject armorfeed publishes on. */
  subject: string;
  maxAgeSec: number;
  maxBytes: number;
  replicas: number;
  duplicateWindowSec: number;
}

/** The stream the export* options describe (created with these limits when missing). */
export function streamSettingsFor(config: Pick<ExportConfig, 'exportStream' | 'exportSubjectPrefix' | 'exportMaxAgeSec' | 'exportMaxBytes' | 'exportReplicas' | 'exportDuplicateWindowSec'>): StreamSettings {
  return {
    name: config.exportStream,
    subject: `${config.exportSubjectPrefix}.>`,
    maxAgeSec: config.exportMaxAgeSec,
    maxBytes: config.exportMaxBytes,
    replicas: config.exportReplicas,
    duplicateWindowSec: config.exportDuplicateWindowSec,
  };
}

export interface StreamCheck {
  created: boolean;
  info: StreamInfo;
}

const NANOS_PER_SECOND = 1e9;

/**
 * Whether the stream subject `filter` takes every subject matched by `subject` (which may
 * end in `>`): token by token, `*` takes one token, `>` the rest.
 */
export function subjectCovers(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return i < s.length;
    if (i >= s.length) return false;
    if (s[i] === '>') return false;
    if (f[i] !== '*' && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}

/**
 * A failure worth trying again: the server is there but not ready (a cluster electing its
 * meta leader answers 503, a busy one times out). Anything else needs a person.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof natsErrors.TimeoutError) return true;
  if (err instanceof natsErrors.RequestError) return true;
  if (err instanceof JetStreamApiError) return err.status === 503 || err.status === 408;
  return false;
}

/** Looks the stream up, creates it when missing; throws ExportStreamMismatchError or ExportStreamError (or the transient error as is). */
export async function ensureStream(jsm: JetStreamManager, settings: StreamSettings): Promise<StreamCheck> {
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(settings.name);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound) throw classify(settings.name, err);
    try {
      info = await jsm.streams.add({
        name: settings.name,
        subjects: [settings.subject],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: settings.maxAgeSec * NANOS_PER_SECOND,
        max_bytes: settings.maxBytes,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicateWindowSec * NANOS_PER_SECOND,
      });
    } catch (addErr) {
      throw classify(settings.name, addErr, 'cannot create it');
    }
    return { created: true, info };
  }
  const subjects = info.config.subjects ?? [];
  if (!subjects.some((f) => subjectCovers(f, settings.subject))) throw new ExportStreamMismatchError(settings.name, subjects, settings.subject);
  return { created: false, info };
}

function classify(stream: string, err: unknown, doing = 'cannot look it up'): unknown {
  if (isTransient(err)) return err;
  // JetStreamNotEnabled is not among the package's exports; its name is stable.
  if (err instanceof Error && err.name === 'JetStreamNotEnabled') return new ExportStreamError(stream, 'JetStream is not enabled on this NATS server (run nats-server with -js) or for this account');
  return new ExportStreamError(stream, `${doing}: ${err instanceof Error ? err.message : String(err)}`);
}

/** One line describing a stream's settings, for the daemon log and export-check. */
export function describeStream(info: StreamInfo): string {
  const c = info.config;
  const age = c.max_age > 0 ? `${c.max_age / NANOS_PER_SECOND}s` : 'none';
  return `subjects=${JSON.stringify(c.subjects ?? [])} storage=${c.storage} replicas=${c.num_replicas} max_age=${age} max_bytes=${c.max_bytes} discard=${c.discard} duplicate_window=${(c.duplicate_window ?? 0) / NANOS_PER_SECOND}s messages=${info.state.messages} bytes=${info.state.bytes}`;
}
