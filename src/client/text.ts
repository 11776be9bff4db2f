/**
 * karmor's text output (kubearmor-wire.md 3.5). karmor marshals the proto with Go's
 * encoding/json, unmarshals it into map[string]interface{} and prints from that map,
 * so the body shows exactly the fields the JSON kept (omitempty applies; PPID and UID
 * always print) and nested values use Go's `%v` map form with sorted keys.
 */
import { compareUtf8, type GoFields, type GoObject, type GoValue, type WireRecord } from './gojson';

export type EventKind = 'Alert' | 'Log';

/** The fixed head of the body; every other key follows in byte order. */
export const textKeyOrder = [
  'ClusterName', 'HostName', 'NamespaceName', 'PodName', 'Labels', 'ContainerName', 'ContainerID',
  'ContainerImage', 'Type', 'PolicyName', 'Severity', 'Message', 'Source', 'Resource', 'Operation',
  'Action', 'Data', 'EventData', 'Enforcer', 'Result',
] as const;

// UpdatedTime is in the header and Timestamp is never printed in the body.
const notInBody = new Set<string>(['UpdatedTime', 'Timestamp', ...textKeyOrder]);

/** karmor's header time: every `T` becomes a space and every `Z` is removed. */
export function karmorTime(updatedTime: string): string {
  return updatedTime.replaceAll('T', ' ').replaceAll('Z', '');
}

/** Go's `%v` of a value that went through json.Unmarshal into interface{}. */
export function goPrintValue(v: GoValue): string {
  if (typeof v === 'string') return v;
  // karmor prints float64 with %.0f; every integer field fits a float64 exactly except huge int64s.
  if (typeof v === 'number' || typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return `[${(v as readonly string[]).join(' ')}]`;
  const entries = [...(v as GoObject).entries].sort((a, b) => compareUtf8(a[0], b[0]));
  return `map[${entries.map(([k, s]) => `${k}:${s}`).join(' ')}]`;
}

/** One Alert or Log in karmor's text form, with the trailing newline and no blank line. */
export function formatEventText(kind: EventKind, fields: GoFields): string {
  const byKey = new Map<string, GoValue>(fields);
  const updated = byKey.get('UpdatedTime');
  let out = typeof updated === 'string' ? `== ${kind} / ${karmorTime(updated)} ==\n` : `== ${kind} ==\n`;
  const extra = [...byKey.keys()].filter((k) => !notInBody.has(k)).sort(compareUtf8);
  for (const key of [...textKeyOrder, ...extra]) {
    const v = byKey.get(key);
    if (v === undefined || v === '') continue;
    out += `${key}: ${goPrintValue(v)}\n`;
  }
  return out;
}

/** A Message in karmor's text form: `<time>  <cluster>  <host>  [<level>]  <message>`. */
export function formatMessageText(rec: WireRecord): string {
  const s = (k: string): string => {
    const v = rec[k];
    return typeof v === 'string' ? v : '';
  };
  return `${karmorTime(s('UpdatedTime'))}  ${s('ClusterName')}  ${s('HostName')}  [${s('Level')}]  ${s('Message')}\n`;
}
