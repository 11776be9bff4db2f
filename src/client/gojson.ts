/**
 * Go `encoding/json` rendering of the feeder messages, byte for byte as karmor and
 * the relay print them (kubearmor-wire.md 1.2, 1.4):
 *
 *   - keys in Go struct declaration order (upstream's .proto declares Alert and Log
 *     in an order that differs from the field numbers, so the order is listed here,
 *     not taken from proto/kubearmor.proto);
 *   - every field `omitempty` (zero value = absent) except PPID and UID;
 *   - sub-messages (Owner, ExecEvent) are pointers: absent -> omitted,
 *     present-but-empty -> `{}`;
 *   - map keys (EventData) sorted byte-wise; ATags a JSON array;
 *   - strings escaped as Go does with HTML escaping on.
 *
 * Events are plain records as protobufjs `toObject(..., { defaults: false })` returns
 * them, so a sub-message that was on the wire is an object even when it is empty.
 */

/** int64 values: a number while it is exact, a bigint beyond 2^53. */
export type Int64 = number | bigint;

/** A decoded feeder message: field name -> value, only fields that were on the wire. */
export type WireRecord = Readonly<Record<string, unknown>>;

/** A nested Go value: a struct (declared order) or a map (sorted keys), both of strings. */
export interface GoObject {
  readonly entries: ReadonlyArray<readonly [string, string]>;
}

/** What a field looks like after Go's json.Marshal and json.Unmarshal into map[string]interface{}. */
export type GoValue = string | Int64 | readonly string[] | GoObject;

/** The ordered, omitempty-filtered fields of one message: the JSON object karmor works from. */
export type GoFields = ReadonlyArray<readonly [string, GoValue]>;

type FieldKind = 'string' | 'int' | 'intAlways' | 'strings' | 'stringMap' | 'owner' | 'execEvent';

interface FieldSpec {
  readonly key: string;
  readonly kind: FieldKind;
}

const f = (key: string, kind: FieldKind = 'string'): FieldSpec => ({ key, kind });

const podownerKeys = ['Ref', 'Name', 'Namespace'] as const;
const execEventKeys = ['ExecID', 'ExecutableName'] as const;

/** Go struct order of pb.Alert (kubearmor-wire.md 1.2). */
export const alertSpec: readonly FieldSpec[] = [
  f('Timestamp', 'int'), f('UpdatedTime'), f('ClusterName'), f('HostName'), f('NamespaceName'),
  f('Owner', 'owner'), f('PodName'), f('Labels'), f('ContainerID'), f('ContainerName'), f('ContainerImage'),
  f('HostPPID', 'int'), f('HostPID', 'int'), f('PPID', 'intAlways'), f('PID', 'int'), f('UID', 'intAlways'),
  f('ParentProcessName'), f('ProcessName'), f('PolicyName'), f('Severity'), f('Tags'), f('ATags', 'strings'),
  f('Message'), f('Type'), f('Source'), f('Operation'), f('Resource'), f('Data'), f('EventData', 'stringMap'),
  f('Enforcer'), f('Action'), f('Result'), f('Cwd'), f('TTY'), f('MaxAlertsPerSec', 'int'),
  f('DroppingAlertsInterval', 'int'), f('ExecEvent', 'execEvent'), f('KubeArmorVersion'), f('NodeID'),
  f('ProcessHash'), f('ParentHash'), f('ResourceHash'), f('HashAlgo'), f('UserName'),
];

/** Go struct order of pb.Log (kubearmor-wire.md 1.2). */
export const logSpec: readonly FieldSpec[] = [
  f('Timestamp', 'int'), f('UpdatedTime'), f('ClusterName'), f('HostName'), f('NamespaceName'),
  f('Owner', 'owner'), f('PodName'), f('Labels'), f('ContainerID'), f('ContainerName'), f('ContainerImage'),
  f('ParentProcessName'), f('ProcessName'), f('HostPPID', 'int'), f('HostPID', 'int'), f('PPID', 'intAlways'),
  f('PID', 'int'), f('UID', 'intAlways'), f('Type'), f('Source'), f('Operation'), f('Resource'), f('Data'),
  f('EventData', 'stringMap'), f('Result'), f('Cwd'), f('TTY'), f('ExecEvent', 'execEvent'), f('NodeID'),
  f('ProcessHash'), f('ParentHash'), f('ResourceHash'), f('HashAlgo'), f('UserName'),
];

/** Go struct order of pb.Message (declaration order = field numbers). */
export const messageSpec: readonly FieldSpec[] = [
  f('Timestamp', 'int'), f('UpdatedTime'), f('ClusterName'), f('HostName'), f('HostIP'), f('Type'),
  f('Level'), f('Message'),
];

/** Converts an integer field as protobufjs hands it over (number, decimal string for int64, or Long-like). */
export function toInt64(v: unknown): Int64 | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : undefined;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'string' || (typeof v === 'object' && v !== null)) {
    const s = String(v);
    if (!/^-?\d+$/.test(s)) return undefined;
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : BigInt(s);
  }
  return undefined;
}

function isZero(n: Int64): boolean {
  return typeof n === 'bigint' ? n === 0n : n === 0;
}

/** Byte-wise (UTF-8) order, which is how Go sorts map keys; differs from JS `<` for astral characters. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function subStruct(v: unknown, keys: readonly string[]): GoObject | undefined {
  // Go: a nil pointer is omitted, a present (even empty) struct is kept.
  if (v === null || v === undefined || typeof v !== 'object') return undefined;
  const rec = v as Readonly<Record<string, unknown>>;
  const entries: Array<readonly [string, string]> = [];
  for (const k of keys) {
    const s = rec[k];
    if (typeof s === 'string' && s !== '') entries.push([k, s]);
  }
  return { entries };
}

function stringMap(v: unknown): GoObject | undefined {
  if (v === null || v === undefined || typeof v !== 'object') return undefined;
  const entries = Object.entries(v as Readonly<Record<string, unknown>>)
    .map(([k, s]): readonly [string, string] => [k, typeof s === 'string' ? s : String(s)])
    .sort((a, b) => compareUtf8(a[0], b[0]));
  return entries.length === 0 ? undefined : { entries };
}

/** Applies Go's omitempty rules to one record: what karmor's json.Marshal keeps, in order. */
export function goFields(spec: readonly FieldSpec[], rec: WireRecord): GoFields {
  const out: Array<readonly [string, GoValue]> = [];
  for (const { key, kind } of spec) {
    const v = rec[key];
    switch (kind) {
      case 'string':
        if (typeof v === 'string' && v !== '') out.push([key, v]);
        break;
      case 'int': {
        const n = toInt64(v);
        if (n !== undefined && !isZero(n)) out.push([key, n]);
        break;
      }
      case 'intAlways':
        out.push([key, toInt64(v) ?? 0]);
        break;
      case 'strings':
        if (Array.isArray(v) && v.length > 0) out.push([key, v.map((s: unknown) => String(s))]);
        break;
      case 'stringMap': {
        const m = stringMap(v);
        if (m !== undefined) out.push([key, m]);
        break;
      }
      case 'owner': {
        const o = subStruct(v, podownerKeys);
        if (o !== undefined) out.push([key, o]);
        break;
      }
      case 'execEvent': {
        const o = subStruct(v, execEventKeys);
        if (o !== undefined) out.push([key, o]);
        break;
      }
    }
  }
  return out;
}

const hex = '0123456789abcdef';
// Characters Go's encoder rewrites (HTML escaping on); surrogates are here to catch lone ones.
// The control-character range is the point of this pattern.
// eslint-disable-next-line no-control-regex
const needsEscape = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;

/**
 * Go's encodeState.string with escapeHTML: `"` and `\`; \n \r \t, and since Go 1.22
 * also \b and \f, as short escapes; other control characters as \u00XX (lower-case
 * hex); <, >, & and U+2028/U+2029 as \u escapes. A lone surrogate is the JS form of
 * invalid UTF-8, which Go writes as \ufffd. karmor HEAD is built with Go >= 1.24.
 */
export function goJsonString(s: string): string {
  if (!needsEscape.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    switch (c) {
      case 0x22: out += '\\"'; continue;
      case 0x5c: out += '\\\\'; continue;
      case 0x0a: out += '\\n'; continue;
      case 0x0d: out += '\\r'; continue;
      case 0x09: out += '\\t'; continue;
      case 0x08: out += '\\b'; continue;
      case 0x0c: out += '\\f'; continue;
    }
    if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26) {
      out += `\\u00${hex[c >> 4]}${hex[c & 0xf]}`;
    } else if (c === 0x2028 || c === 0x2029) {
      out += c === 0x2028 ? '\\u2028' : '\\u2029';
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += s[i] + s[i + 1];
        i++;
      } else {
        out += '\\ufffd';
      }
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      out += '\\ufffd';
    } else {
      out += s[i];
    }
  }
  return `${out}"`;
}

function goJsonValue(v: GoValue): string {
  if (typeof v === 'string') return goJsonString(v);
  if (typeof v === 'number' || typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return `[${(v as readonly string[]).map(goJsonString).join(',')}]`;
  const obj = v as GoObject;
  return `{${obj.entries.map(([k, s]) => `${goJsonString(k)}:${goJsonString(s)}`).join(',')}}`;
}

/** json.Marshal of the filtered fields: one compact line without the newline. */
export function marshalGoFields(fields: GoFields): string {
  return `{${fields.map(([k, v]) => `${goJsonString(k)}:${goJsonValue(v)}`).join(',')}}`;
}

export const marshalAlert = (rec: WireRecord): string => marshalGoFields(goFields(alertSpec, rec));
export const marshalLog = (rec: WireRecord): string => marshalGoFields(goFields(logSpec, rec));
export const marshalMessage = (rec: WireRecord): string => marshalGoFields(goFields(messageSpec, rec));

/**
 * Go's json.Indent(dst, src, "", "  ") over compact JSON, which is what karmor's
 * pretty-json does to the marshalled bytes (so key order stays the struct order).
 * Empty `{}` and `[]` stay as they are.
 */
export function goJsonIndent(compact: string, indent = '  '): string {
  let out = '';
  let depth = 0;
  let inString = false;
  for (let i = 0; i < compact.length; i++) {
    const ch = compact[i];
    if (inString) {
      out += ch;
      if (ch === '\\') {
        out += compact[i + 1];
        i++;
      } else if (ch === '"') {
        inString = false;
      }
      continue;
    }
    switch (ch) {
      case '"':
        inString = true;
        out += ch;
        break;
      case '{':
      case '[': {
        const close = ch === '{' ? '}' : ']';
        if (compact[i + 1] === close) {
          out += ch + close;
          i++;
        } else {
          depth++;
          out += `${ch}\n${indent.repeat(depth)}`;
        }
        break;
      }
      case '}':
      case ']':
        depth--;
        out += `\n${indent.repeat(depth)}${ch}`;
        break;
      case ',':
        out += `,\n${indent.repeat(depth)}`;
        break;
      case ':':
        out += ': ';
        break;
      default:
        out += ch;
    }
  }
  return out;
}
