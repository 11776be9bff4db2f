/**
 * Checks an event from any source against the ingest schema before it may enter a
 * ring. Everything a source can get wrong fails here, in the source's own thread, with
 * a coded InputError: the encoders downstream then never see a bad event.
 */
import { InputError } from '../errors';
import { alertTypes, ingestFields, logTypes, type FieldKind, type IngestEvent } from './schema';

const kindOf: ReadonlyMap<string, FieldKind> = new Map(ingestFields.map(([key, kind]) => [key, kind]));

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function wrongType(key: string, want: string, got: unknown): InputError {
  const shown = got === null ? 'null' : Array.isArray(got) ? 'array' : typeof got;
  return new InputError('ERR_INPUT_WRONG_TYPE', `field "${key}" must be ${want}, got ${shown}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function checkStringMap(key: string, v: unknown, allowed?: ReadonlySet<string>): void {
  if (!isPlainObject(v)) throw wrongType(key, 'a map of strings', v);
  for (const k of Object.keys(v)) {
    if (allowed !== undefined && !allowed.has(k)) {
      throw new InputError('ERR_INPUT_UNKNOWN_FIELD', `field "${key}.${k}" is not part of ${key}`);
    }
    if (typeof v[k] !== 'string') throw wrongType(`${key}.${k}`, 'a string', v[k]);
  }
}

const ownerKeys = new Set(['ref', 'name', 'namespace']);
const execEventKeys = new Set(['ExecID', 'ExecutableName']);

/** Validates a decoded value as an IngestEvent; throws InputError with the first problem found. */
export function validateEvent(value: unknown): IngestEvent {
  if (!isPlainObject(value)) {
    throw new InputError('ERR_INPUT_NOT_A_MAP', `an event must be a map of upstream log keys, got ${Array.isArray(value) ? 'array' : typeof value}`);
  }
  for (const key of Object.keys(value)) {
    const kind = kindOf.get(key);
    const v = value[key];
    if (kind === undefined) {
      throw new InputError('ERR_INPUT_UNKNOWN_FIELD', `field "${key}" is not an upstream log key (keys are lowerCamelCase, e.g. "namespaceName")`);
    }
    if (v === undefined || v === null) {
      if (kind === 'strings' || kind === 'stringMap' || kind === 'owner') continue;
      throw wrongType(key, kind === 'int' ? 'an integer' : kind === 'string' ? 'a string' : 'a map', v);
    }
    switch (kind) {
      case 'string':
        if (typeof v !== 'string') throw wrongType(key, 'a string', v);
        break;
      case 'int':
        if (typeof v !== 'number' || !Number.isInteger(v)) {
          if (typeof v !== 'bigint') throw wrongType(key, 'an integer', v);
        }
        if (key !== 'timestamp' && (Number(v) < INT32_MIN || Number(v) > INT32_MAX)) {
          throw new InputError('ERR_INPUT_WRONG_TYPE', `field "${key}" must fit in int32, got ${String(v)}`);
        }
        break;
      case 'strings':
        if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw wrongType(key, 'an array of strings', v);
        break;
      case 'owner':
        checkStringMap(key, v, ownerKeys);
        break;
      case 'execEvent':
        checkStringMap(key, v, execEventKeys);
        break;
      case 'stringMap':
        checkStringMap(key, v);
        break;
    }
  }
  const event = value as IngestEvent;
  const type = event.type ?? '';
  if (type === '' && (event.source ?? '') === '') {
    throw new InputError('ERR_INPUT_UNKNOWN_TYPE', 'event has neither "type" nor "source"; upstream drops such events');
  }
  if (type !== '' && !alertTypes.has(type) && !logTypes.has(type)) {
    throw new InputError(
      'ERR_INPUT_UNKNOWN_TYPE',
      `type "${type}" is not one upstream emits (alerts: ${[...alertTypes].join(', ')}; logs: ${[...logTypes].join(', ')})`,
    );
  }
  return event;
}

/** True when the event goes to WatchAlerts (upstream routes on Type alone). */
export function isAlert(event: IngestEvent): boolean {
  return event.type !== undefined && alertTypes.has(event.type);
}
