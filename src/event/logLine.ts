/**
 * Upstream's `logPath` output: one JSON line per alert or log, written from the
 * internal tp.Log struct (lowerCamelCase keys, kubearmor-wire.md 2.8), before
 * throttling. Keys come in schema order; "always" keys are written even when empty.
 */
import { ingestFields, type IngestEvent } from './schema';
import { formatUpdatedTime, parseUpdatedTime } from '../wire/time';

/** Go's encoding/json string form: like JSON.stringify, plus HTML-safe and U+2028/9 escapes. */
export function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function goStringMap(m: Record<string, string>): string {
  const keys = Object.keys(m).sort();
  return `{${keys.map((k) => `${goString(k)}:${goString(m[k])}`).join(',')}}`;
}

export function logLine(e: IngestEvent, host: string, ingestedUs: number): string {
  const parts: string[] = [];
  const rec = e as Record<string, unknown>;
  for (const [key, kind, always] of ingestFields) {
    let v = rec[key];
    if (key === 'timestamp' && v === undefined) {
      const given = e.updatedTime !== undefined && e.updatedTime !== '' ? parseUpdatedTime(e.updatedTime) : Number.NaN;
      v = Math.floor((Number.isNaN(given) ? ingestedUs : given) / 1e6);
    }
    if (key === 'updatedTime' && (v === undefined || v === '')) v = formatUpdatedTime(e.timestamp !== undefined ? e.timestamp * 1e6 : ingestedUs);
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
        const o = e.owner;
        if (o && ((o.ref ?? '') !== '' || (o.name ?? '') !== '' || (o.namespace ?? '') !== '')) {
          parts.push(`"owner":{"ref":${goString(o.ref ?? '')},"name":${goString(o.name ?? '')},"namespace":${goString(o.namespace ?? '')}}`);
        }
        break;
      }
      case 'execEvent': {
        const x = e.execEvent ?? {};
        parts.push(`"execEvent":{"ExecID":${goString(x.ExecID ?? '')},"ExecutableName":${goString(x.ExecutableName ?? '')}}`);
        break;
      }
      case 'stringMap':
        if (v && typeof v === 'object' && Object.keys(v).length > 0) parts.push(`"${key}":${goStringMap(v as Record<string, string>)}`);
        break;
    }
  }
  return `{${parts.join(',')}}`;
}
