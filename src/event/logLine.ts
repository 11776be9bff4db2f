/**
 * Upstream's `logPath` output: one JSON line per alert or log, written from the
 * internal tp.Log struct (lowerCamelCase keys, kubearmor-wire.md 2.8), before
 * throttling. Keys come in schema order; "always" keys are written even when empty.
 */
import { defaultTimestamp, defaultUpdatedTime, EXEC_EVENT_KEYS, OWNER_KEYS } from './rules';
import { ingestFields, type IngestEvent } from './schema';

/** Go's encoding/json string form: like JSON.stringify, plus HTML-safe and U+2028/9 escapes. */
export function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function goStringMap(m: Record<string, string>): string {
  const keys = Object.keys(m).sort();
  return `{${keys.map((k) => `${goString(k)}:${goString(m[k])}`).join(',')}}`;
}

/** A Go struct of string fields: every field, in order, empty ones as "". */
function goStruct(keys: readonly string[], values: Record<string, string | undefined>): string {
  return `{${keys.map((k) => `${goString(k)}:${goString(values[k] ?? '')}`).join(',')}}`;
}

export function logLine(e: IngestEvent, host: string, ingestedUs: number): string {
  const parts: string[] = [];
  const rec = e as Record<string, unknown>;
  for (const [key, kind, always] of ingestFields) {
    let v = rec[key];
    if (key === 'timestamp' && v === undefined) v = defaultTimestamp(e.updatedTime ?? '', ingestedUs);
    if (key === 'updatedTime' && (v === undefined || v === '')) v = defaultUpdatedTime(e.timestamp, ingestedUs);
    if (key === 'hostName' && (v === undefined || v === '')) v = host;
    switch (kind) {
      case 'string':
        if (typeof v === 'string' && v !== '') parts.push(`"${key}":${goString(v)}`);
        else if (always) parts.push(`"${key}":""`);
        break;
      case 'int':
        if (typeof v === 'number' && v !== 0) parts.push(`"${key}":${v}`);
        else if (always) parts.push(`"${key}":0`);
        break;
      case 'strings':
        if (Array.isArray(v) && v.length > 0) parts.push(`"${key}":[${v.map((s) => goString(String(s))).join(',')}]`);
        else if (key === 'atags' && typeof e.tags === 'string' && e.tags !== '') {
          parts.push(`"${key}":[${e.tags.split(',').map(goString).join(',')}]`);
        } else parts.push(`"${key}":null`);
        break;
      case 'owner': {
        const o: Record<string, string | undefined> = e.owner ?? {};
        if (OWNER_KEYS.some((k) => (o[k] ?? '') !== '')) parts.push(`"owner":${goStruct(OWNER_KEYS, o)}`);
        break;
      }
      case 'execEvent':
        parts.push(`"execEvent":${goStruct(EXEC_EVENT_KEYS, e.execEvent ?? {})}`);
        break;
      case 'stringMap':
        if (v && typeof v === 'object' && Object.keys(v).length > 0) parts.push(`"${key}":${goStringMap(v as Record<string, string>)}`);
        break;
    }
  }
  return `{${parts.join(',')}}`;
}
