/**
 * msgpack event -> protobuf Alert/Log, byte to byte. The ingest map already holds every
 * string as UTF-8, which is exactly what protobuf carries, so strings are copied, never
 * decoded into JS strings. Fields are written in field-number order, as Go's encoder
 * does, from a plan built once from the .proto via protobufjs reflection (no field
 * number is written down in this file). Upstream's rules (kubearmor-wire.md 2.5) apply
 * on the way: defaults for ClusterName/HostName/NodeID/times, Severity "0" dropped,
 * ATags from Tags, Owner only when set, ExecEvent always, EventData derived from Data
 * (and Resource for Network), Resource made valid UTF-8, and the NetworkFirewall and
 * Device rewrites.
 *
 * Why not protobufjs's encode: a CPU profile of the encoder worker put msgpack decode,
 * object building and protobufjs encode at 13-25 us per synthetic event on this 2-core
 * machine, which caps the feeder below the Go design; transcoding costs about a quarter
 * of that and allocates nothing per event (`npm run bench`, "batch encode vs per-event
 * encode"). The protobufjs path stays as the reference the tests compare against
 * (test/transcode.test.ts) and as the encoder of daemon Messages and notices.
 */
import type * as protobuf from 'protobufjs';
import { feederTypes } from '../wire/proto';
import { formatUpdatedTime, parseUpdatedTime } from '../wire/time';
import { K, readInt, readMapHeader, readStr, strEquals, strValue, utf8SequenceLength, type StrRef } from '../event/scan';
import type { EventContext } from '../event/toProto';
import { ProtoWriter, varintSize } from './protoWriter';

type Rule =
  | 'str' | 'int32' | 'timestamp' | 'updatedTime' | 'cluster' | 'host' | 'nodeID' | 'type' | 'resource'
  | 'enforcer' | 'severity' | 'atags' | 'owner' | 'execEvent' | 'eventData';

interface Step {
  tag: number;
  rule: Rule;
  src: number;
}

/** Proto field names whose ingest key is not the lowerCamelCase of the name. */
const keyFor: Record<string, keyof typeof K> = {
  HostPID: 'hostPid', HostPPID: 'hostPPid', PPID: 'ppid', PID: 'pid', UID: 'uid', ContainerID: 'containerID',
  NodeID: 'nodeID', UserName: 'username', TTY: 'tty', ATags: 'atags',
  MaxAlertsPerSec: 'MaxAlertsPerSec', DroppingAlertsInterval: 'DroppingAlertsInterval',
};

const specialRule: Record<string, Rule> = {
  Timestamp: 'timestamp', UpdatedTime: 'updatedTime', ClusterName: 'cluster', HostName: 'host', NodeID: 'nodeID',
  Type: 'type', Resource: 'resource', Enforcer: 'enforcer', Severity: 'severity', ATags: 'atags',
  Owner: 'owner', ExecEvent: 'execEvent', EventData: 'eventData',
};

/**
 * Upstream takes Timestamp and UpdatedTime together. When a source sends only one, the
 * other is derived from it; when it sends neither, both are the arrival time.
 */
function eventSeconds(buf: Uint8Array, tape: Int32Array, ingestedUs: number): number {
  const us = strValue(buf, tape[K.updatedTime]) === '' ? Number.NaN : parseUpdatedTime(strValue(buf, tape[K.updatedTime]));
  return Math.floor((Number.isNaN(us) ? ingestedUs : us) / 1e6);
}

function eventMicros(buf: Uint8Array, tape: Int32Array, ingestedUs: number): number {
  const ts = tape[K.timestamp];
  return ts >= 0 ? readInt(buf, ts) * 1e6 : ingestedUs;
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

function planFor(type: protobuf.Type): Step[] {
  return type.fieldsArray
    .slice()
    .sort((a, b) => a.id - b.id)
    .map((f) => {
      const key = keyFor[f.name] ?? ((f.name[0].toLowerCase() + f.name.slice(1)) as keyof typeof K);
      const src = K[key];
      if (src === undefined) throw new Error(`transcode: no ingest key for ${type.name}.${f.name}`);
      const rule = specialRule[f.name] ?? (f.type === 'string' ? 'str' : f.type === 'int32' ? 'int32' : undefined);
      if (rule === undefined) throw new Error(`transcode: no rule for ${type.name}.${f.name} (${f.type})`);
      const wire = rule === 'int32' || rule === 'timestamp' ? WIRE_VARINT : WIRE_LEN;
      return { tag: (f.id << 3) | wire, rule, src };
    });
}

function subTags(type: protobuf.Type, names: string[]): number[] {
  return names.map((n) => (type.fields[n].id << 3) | WIRE_LEN);
}

const ascii = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const B = {
  NetworkFirewall: ascii('NetworkFirewall'),
  Device: ascii('Device'),
  Process: ascii('Process'),
  Network: ascii('Network'),
  MatchedHostPolicy: ascii('MatchedHostPolicy'),
  AppArmor: ascii('AppArmor'),
  eBPFMonitor: ascii('eBPF Monitor'),
  Audit: ascii('Audit'),
  zero: ascii('0'),
};

/** Ingest keys of the two sub-messages, in the order of ownerTags / execTags. */
const OWNER_KEYS = ['ref', 'name', 'namespace'].map(ascii);
const EXEC_KEYS = ['ExecID', 'ExecutableName'].map(ascii);

/** What the encoder needs to know about one event besides its bytes. */
export interface EventFacts {
  /** Offsets into the source buffer of the (post-rewrite) attributes; -1 = empty. */
  namespace: number;
  operation: number;
  /** Type as sent: NetworkFirewall alerts become MatchedNetworkPolicy. */
  typeOverride: string | undefined;
  type: number;
  throttleEligible: boolean;
}

export class Transcoder {
  private readonly alertPlan: Step[];
  private readonly logPlan: Step[];
  private readonly ownerTags: number[];
  private readonly execTags: number[];
  private readonly mapKeyTag: number;
  private readonly mapValueTag: number;
  private readonly cluster: Uint8Array;
  private readonly host: Uint8Array;
  private readonly nodeID: Uint8Array;
  private readonly s: StrRef = { start: 0, length: 0 };
  private readonly sub: Int32Array = new Int32Array(6);
  private readonly utf8Scratch = new ProtoWriter(4096);
  private readonly pairs: number[] = [];

  constructor(private readonly ctx: EventContext) {
    const t = feederTypes();
    this.alertPlan = planFor(t.Alert);
    this.logPlan = planFor(t.Log);
    const owner = t.root.lookupType('feeder.Podowner');
    const exec = t.root.lookupType('feeder.ExecEvent');
    this.ownerTags = subTags(owner, ['Ref', 'Name', 'Namespace']);
    this.execTags = subTags(exec, ['ExecID', 'ExecutableName']);
    this.mapKeyTag = (1 << 3) | WIRE_LEN;
    this.mapValueTag = (2 << 3) | WIRE_LEN;
    this.cluster = Buffer.from(ctx.cluster, 'utf8');
    this.host = Buffer.from(ctx.host, 'utf8');
    this.nodeID = Buffer.from(ctx.nodeID, 'utf8');
  }

  /**
   * Appends the protobuf encoding of the scanned event to `w` (no frame header) and
   * fills `facts`. `alert` selects the Alert or Log layout.
   */
  encode(buf: Uint8Array, tape: Int32Array, alert: boolean, ingestedUs: number, w: ProtoWriter, facts: EventFacts): void {
    const op = tape[K.operation];
    const isFirewall = strEquals(buf, op, B.NetworkFirewall);
    facts.namespace = tape[K.namespaceName];
    facts.operation = op;
    facts.type = tape[K.type];
    facts.typeOverride = alert && isFirewall ? 'MatchedNetworkPolicy' : undefined;
    facts.throttleEligible = alert && this.isThrottleEligible(buf, tape);
    const s = this.s;
    for (const step of alert ? this.alertPlan : this.logPlan) {
      const pos = tape[step.src];
      switch (step.rule) {
        case 'str':
          if (pos >= 0 && readStr(buf, pos, s) && s.length > 0) w.lenField(step.tag, buf, s.start, s.length);
          break;
        case 'int32': {
          const v = pos >= 0 ? readInt(buf, pos) : 0;
          if (v !== 0) {
            w.varint(step.tag);
            w.signedVarint(v);
          }
          break;
        }
        case 'timestamp': {
          const v = pos >= 0 ? readInt(buf, pos) : eventSeconds(buf, tape, ingestedUs);
          if (v !== 0) {
            w.varint(step.tag);
            w.signedVarint(v);
          }
          break;
        }
        case 'updatedTime':
          if (pos >= 0 && readStr(buf, pos, s) && s.length > 0) w.lenField(step.tag, buf, s.start, s.length);
          else w.asciiField(step.tag, formatUpdatedTime(eventMicros(buf, tape, ingestedUs)));
          break;
        case 'cluster':
        case 'host':
          if (pos >= 0 && readStr(buf, pos, s) && s.length > 0) w.lenField(step.tag, buf, s.start, s.length);
          else {
            const d = step.rule === 'cluster' ? this.cluster : this.host;
            if (d.length > 0) w.lenField(step.tag, d, 0, d.length);
          }
          break;
        case 'nodeID':
          // An explicit (even empty) nodeID wins; only an absent one is filled from machine-id.
          if (pos >= 0) {
            if (readStr(buf, pos, s) && s.length > 0) w.lenField(step.tag, buf, s.start, s.length);
          } else if (this.nodeID.length > 0) w.lenField(step.tag, this.nodeID, 0, this.nodeID.length);
          break;
        case 'type':
          if (facts.typeOverride !== undefined) w.asciiField(step.tag, facts.typeOverride);
          else if (pos >= 0 && readStr(buf, pos, s) && s.length > 0) w.lenField(step.tag, buf, s.start, s.length);
          break;
        case 'resource':
          if (!alert && this.ctx.dropResourceFromProcessLogs && strEquals(buf, op, B.Process)) break;
          if (pos >= 0 && readStr(buf, pos, s) && s.length > 0) this.writeValidUtf8(step.tag, buf, s.start, s.length, w);
          break;
        case 'enforcer':
          if (isFirewall) w.asciiField(step.tag, 'NetworkPolicyEnforcer');
          else if (strEquals(buf, op, B.Device)) w.asciiField(step.tag, 'USBDeviceHandler');
          else if (pos >= 0 && readStr(buf, pos, s) && s.length > 0) w.lenField(step.tag, buf, s.start, s.length);
          break;
        case 'severity':
          if (pos >= 0 && readStr(buf, pos, s) && s.length > 0 && !strEquals(buf, pos, B.zero)) w.lenField(step.tag, buf, s.start, s.length);
          break;
        case 'atags':
          this.writeATags(step.tag, buf, tape[K.tags], w);
          break;
        case 'owner':
          this.writeSubMessage(step.tag, buf, pos, this.ownerTags, OWNER_KEYS, false, w);
          break;
        case 'execEvent':
          this.writeSubMessage(step.tag, buf, pos, this.execTags, EXEC_KEYS, true, w);
          break;
        case 'eventData':
          if (pos >= 0) this.writeEventDataMap(step.tag, buf, pos, w);
          else this.writeDerivedEventData(step.tag, buf, tape, w);
          break;
      }
    }
  }

  private isThrottleEligible(buf: Uint8Array, tape: Int32Array): boolean {
    const enforcer = tape[K.enforcer];
    if (strEquals(buf, enforcer, B.eBPFMonitor) && this.contains(buf, tape[K.action], B.Audit)) return true;
    return strEquals(buf, tape[K.type], B.MatchedHostPolicy) && (strEquals(buf, enforcer, B.AppArmor) || strEquals(buf, enforcer, B.eBPFMonitor));
  }

  private contains(buf: Uint8Array, pos: number, needle: Uint8Array): boolean {
    const s = this.s;
    if (pos < 0 || !readStr(buf, pos, s)) return false;
    outer: for (let i = s.start; i + needle.length <= s.start + s.length; i++) {
      for (let j = 0; j < needle.length; j++) if (buf[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  }

  /** ATags is Tags split on ",": one repeated-string entry per part (empty parts kept, as Go's Split does). */
  private writeATags(tag: number, buf: Uint8Array, pos: number, w: ProtoWriter): void {
    const s = this.s;
    if (pos < 0 || !readStr(buf, pos, s) || s.length === 0) return;
    const end = s.start + s.length;
    let from = s.start;
    for (let i = s.start; i <= end; i++) {
      if (i === end || buf[i] === 0x2c) {
        w.lenField(tag, buf, from, i - from);
        from = i + 1;
      }
    }
  }

  /** Owner (only when a part is set) or ExecEvent (always, possibly empty) from a msgpack map. */
  private writeSubMessage(tag: number, buf: Uint8Array, pos: number, tags: number[], keys: readonly Uint8Array[], always: boolean, w: ProtoWriter): void {
    // found[2k] / found[2k+1]: start and length of key k's value; -1 when absent or empty.
    const found = this.sub;
    found.fill(-1);
    const s = this.s;
    if (pos >= 0) {
      const hdr = readMapHeader(buf, pos);
      if (hdr !== null) {
        let p = hdr[1];
        for (let i = 0; i < hdr[0]; i++) {
          readStr(buf, p, s);
          const ks = s.start;
          const kl = s.length;
          readStr(buf, ks + kl, s);
          for (let k = 0; k < keys.length; k++) {
            const key = keys[k];
            if (key.length !== kl || s.length === 0) continue;
            let same = true;
            for (let j = 0; j < kl; j++) if (buf[ks + j] !== key[j]) { same = false; break; }
            if (same) {
              found[2 * k] = s.start;
              found[2 * k + 1] = s.length;
              break;
            }
          }
          p = s.start + s.length;
        }
      }
    }
    let size = 0;
    for (let k = 0; k < keys.length; k++) {
      const len = found[2 * k + 1];
      if (len >= 0) size += varintSize(tags[k]) + varintSize(len) + len;
    }
    if (size === 0 && !always) return;
    w.varint(tag);
    w.varint(size);
    for (let k = 0; k < keys.length; k++) {
      if (found[2 * k + 1] >= 0) w.lenField(tags[k], buf, found[2 * k], found[2 * k + 1]);
    }
  }

  private writeEntry(tag: number, kb: Uint8Array, ks: number, kl: number, vb: Uint8Array, vs: number, vl: number, upperFirst: boolean, w: ProtoWriter): void {
    const inner = 1 + varintSize(kl) + kl + 1 + varintSize(vl) + vl;
    w.varint(tag);
    w.varint(inner);
    w.varint(this.mapKeyTag);
    w.varint(kl);
    const at = w.pos;
    w.bytes(kb, ks, kl);
    // EventData keys are capitalised (syscall -> Syscall); ASCII letters only.
    if (upperFirst && kl > 0 && w.buf[at] >= 0x61 && w.buf[at] <= 0x7a) w.buf[at] -= 0x20;
    w.varint(this.mapValueTag);
    w.varint(vl);
    w.bytes(vb, vs, vl);
  }

  private writeEventDataMap(tag: number, buf: Uint8Array, pos: number, w: ProtoWriter): void {
    const hdr = readMapHeader(buf, pos);
    if (hdr === null) return;
    const s = this.s;
    let p = hdr[1];
    for (let i = 0; i < hdr[0]; i++) {
      readStr(buf, p, s);
      const ks = s.start;
      const kl = s.length;
      readStr(buf, ks + kl, s);
      this.writeEntry(tag, buf, ks, kl, buf, s.start, s.length, false, w);
      p = s.start + s.length;
    }
  }

  /**
   * EventData from `k=v` tokens of Data, and for Network events of Resource too (whose
   * pairs override Data's). Pairs are collected as offsets, de-duplicated by key, then
   * written; no strings are made.
   */
  private writeDerivedEventData(tag: number, buf: Uint8Array, tape: Int32Array, w: ProtoWriter): void {
    const pairs = this.pairs;
    pairs.length = 0;
    this.collectPairs(buf, tape[K.data]);
    if (strEquals(buf, tape[K.operation], B.Network)) this.collectPairs(buf, tape[K.resource]);
    // pairs: [keyStart, keyLen, valueStart, valueLen] per token; a later equal key wins.
    for (let i = 0; i < pairs.length; i += 4) {
      let overridden = false;
      for (let j = i + 4; j < pairs.length && !overridden; j += 4) {
        if (pairs[j + 1] !== pairs[i + 1]) continue;
        overridden = this.sameKey(buf, pairs[i], pairs[j], pairs[i + 1]);
      }
      if (!overridden) this.writeEntry(tag, buf, pairs[i], pairs[i + 1], buf, pairs[i + 2], pairs[i + 3], true, w);
    }
  }

  private sameKey(buf: Uint8Array, a: number, b: number, len: number): boolean {
    const up = (c: number): number => (c >= 0x61 && c <= 0x7a ? c - 0x20 : c);
    if (up(buf[a]) !== up(buf[b])) return false;
    for (let k = 1; k < len; k++) if (buf[a + k] !== buf[b + k]) return false;
    return true;
  }

  private collectPairs(buf: Uint8Array, pos: number): void {
    const s = this.s;
    if (pos < 0 || !readStr(buf, pos, s)) return;
    const end = s.start + s.length;
    let i = s.start;
    while (i < end) {
      while (i < end && (buf[i] === 0x20 || buf[i] === 0x09 || buf[i] === 0x0a || buf[i] === 0x0d)) i++;
      const start = i;
      let eq = -1;
      while (i < end && buf[i] !== 0x20 && buf[i] !== 0x09 && buf[i] !== 0x0a && buf[i] !== 0x0d) {
        if (eq < 0 && buf[i] === 0x3d) eq = i;
        i++;
      }
      if (eq > start) this.pairs.push(start, eq - start, eq + 1, i - eq - 1);
    }
  }

  /**
   * Resource is made valid UTF-8 by deleting invalid bytes (upstream), and U+FFFD, which
   * is what invalid input became if it passed through a JS string on its way here.
   */
  private writeValidUtf8(tag: number, buf: Uint8Array, start: number, length: number, w: ProtoWriter): void {
    let asciiOnly = true;
    for (let i = start; i < start + length; i++) if (buf[i] >= 0x80) { asciiOnly = false; break; }
    if (asciiOnly) {
      w.lenField(tag, buf, start, length);
      return;
    }
    const out = this.utf8Scratch;
    out.pos = 0;
    out.ensure(length);
    const end = start + length;
    let i = start;
    while (i < end) {
      const n = utf8SequenceLength(buf, i, end);
      // U+FFFD is what invalid input became if it passed through a JS string on its way.
      if (n === 0 || (n === 3 && buf[i] === 0xef && buf[i + 1] === 0xbf && buf[i + 2] === 0xbd)) {
        i += n === 0 ? 1 : 3;
        continue;
      }
      for (let k = 0; k < n; k++) out.buf[out.pos++] = buf[i + k];
      i += n;
    }
    if (out.pos > 0) w.lenField(tag, out.buf, 0, out.pos);
  }
}

