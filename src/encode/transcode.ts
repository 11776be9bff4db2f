/**
 * Transcodes one scanned msgpack event (its bytes and the tape event/scan.ts built) to
 * the protobuf body of a pb.Alert or pb.Log, byte to byte, with no gRPC frame header
 * (encodeSpan.ts frames it). The ingest map already holds every string as UTF-8, which
 * is exactly what protobuf carries, so strings are copied, never decoded into JS
 * strings. Fields are written in field-number order, as Go's encoder does, from a plan
 * built once from the .proto via protobufjs reflection (no field number is written down
 * in this file). Upstream's rules (kubearmor-wire.md 2.5, constants in event/rules.ts)
 * apply on the way: defaults for ClusterName/HostName/NodeID/times, Severity "0"
 * dropped, ATags from Tags, Owner only when set, ExecEvent always, EventData derived
 * from Data (and Resource for Network), Resource made valid UTF-8, and the
 * NetworkFirewall and Device rewrites. It also reports where the attributes that
 * server-side filters read are (EventFacts).
 *
 * Why not protobufjs's encode: a CPU profile of the encoder worker put msgpack decode,
 * object building and protobufjs encode at 13-25 us per synthetic event on this 2-core
 * machine, which caps the feeder below the Go design; transcoding costs about a quarter
 * of that and allocates nothing per event (`npm run bench`, "batch encode vs per-event
 * encode"). The protobufjs path is kept only as the oracle the tests compare against
 * (test/helpers/referenceEncoder.ts, test/transcode.test.ts) and the bench's baseline.
 */
import { randomBytes } from 'node:crypto';
import type * as protobuf from 'protobufjs';
import { feederTypes } from '../wire/proto';
import { ascii, K, readInt, readMapHeader, readStr, readStringEntry, strEquals, strValue, utf8SequenceLength, type StrRef } from '../event/scan';
import {
  defaultTimestamp,
  defaultUpdatedTime,
  ENFORCER_BY_OPERATION,
  EXEC_EVENT_KEYS,
  FIREWALL_ALERT_TYPE,
  FIREWALL_OPERATION,
  NETWORK_OPERATION,
  NO_SEVERITY,
  OWNER_KEYS,
  PROCESS_OPERATION,
  type EventContext,
} from '../event';
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

/** Pairs of a derived EventData compared pairwise; more go through a hash table. */
const PAIRWISE_MAX = 16;

/** ASCII lower-case letter to upper case; any other byte as is. */
function upper(c: number): number {
  return c >= 0x61 && c <= 0x7a ? c - 0x20 : c;
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

const B = {
  firewall: ascii(FIREWALL_OPERATION),
  process: ascii(PROCESS_OPERATION),
  network: ascii(NETWORK_OPERATION),
  noSeverity: ascii(NO_SEVERITY),
};

/** Operations whose alerts get a fixed Enforcer, as bytes. */
const enforcerRewrites: [Uint8Array, string][] = [...ENFORCER_BY_OPERATION].map(([op, enforcer]) => [ascii(op), enforcer]);

/** Ingest keys of the two sub-messages, in the order of ownerTags / execTags. */
const OWNER_KEY_BYTES = OWNER_KEYS.map(ascii);
const EXEC_KEY_BYTES = EXEC_EVENT_KEYS.map(ascii);

/** What the encoder needs to know about one event besides its bytes. */
export interface EventFacts {
  /** Offsets into the source buffer of the (post-rewrite) attributes; -1 = empty. */
  namespace: number;
  operation: number;
  /** Type as sent: NetworkFirewall alerts become MatchedNetworkPolicy. */
  typeOverride: string | undefined;
  type: number;
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
  private readonly key: StrRef = { start: 0, length: 0 };
  private readonly sub: Int32Array = new Int32Array(6);
  private readonly utf8Scratch = new ProtoWriter(4096);
  /** Resource made valid UTF-8, for the EventData pairs of a Network event. */
  private readonly resourceScratch = new ProtoWriter(4096);
  private readonly pairs: number[] = [];
  /** The buffer each pair's offsets point into (the event, or resourceScratch). */
  private readonly pairSources: Uint8Array[] = [];
  private overridden = new Uint8Array(64);
  private keyTable = new Int32Array(0);
  private readonly hashSeed = randomBytes(4).readUInt32LE(0);

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
    const isFirewall = strEquals(buf, op, B.firewall);
    facts.namespace = tape[K.namespaceName];
    facts.operation = op;
    facts.type = tape[K.type];
    facts.typeOverride = alert && isFirewall ? FIREWALL_ALERT_TYPE : undefined;
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
          const v = pos >= 0 ? readInt(buf, pos) : defaultTimestamp(strValue(buf, tape[K.updatedTime]), ingestedUs);
          if (v !== 0) {
            w.varint(step.tag);
            w.signedVarint(v);
          }
          break;
        }
        case 'updatedTime':
          if (pos >= 0 && readStr(buf, pos, s) && s.length > 0) w.lenField(step.tag, buf, s.start, s.length);
          else w.asciiField(step.tag, defaultUpdatedTime(tape[K.timestamp] >= 0 ? readInt(buf, tape[K.timestamp]) : undefined, ingestedUs));
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
          if (!alert && this.ctx.dropResourceFromProcessLogs && strEquals(buf, op, B.process)) break;
          if (pos >= 0 && readStr(buf, pos, s) && s.length > 0) this.writeValidUtf8(step.tag, buf, s.start, s.length, w);
          break;
        case 'enforcer': {
          const rewritten = this.rewrittenEnforcer(buf, op);
          if (rewritten !== undefined) w.asciiField(step.tag, rewritten);
          else if (pos >= 0 && readStr(buf, pos, s) && s.length > 0) w.lenField(step.tag, buf, s.start, s.length);
          break;
        }
        case 'severity':
          if (pos >= 0 && readStr(buf, pos, s) && s.length > 0 && !strEquals(buf, pos, B.noSeverity)) w.lenField(step.tag, buf, s.start, s.length);
          break;
        case 'atags':
          this.writeATags(step.tag, buf, tape[K.tags], w);
          break;
        case 'owner':
          this.writeSubMessage(step.tag, buf, pos, this.ownerTags, OWNER_KEY_BYTES, false, w);
          break;
        case 'execEvent':
          this.writeSubMessage(step.tag, buf, pos, this.execTags, EXEC_KEY_BYTES, true, w);
          break;
        case 'eventData':
          if (pos >= 0) this.writeEventDataMap(step.tag, buf, pos, w);
          else this.writeDerivedEventData(step.tag, buf, tape, w);
          break;
      }
    }
  }

  private rewrittenEnforcer(buf: Uint8Array, op: number): string | undefined {
    for (const [operation, enforcer] of enforcerRewrites) if (strEquals(buf, op, operation)) return enforcer;
    return undefined;
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
        const key = this.key;
        let p = hdr[1];
        for (let i = 0; i < hdr[0]; i++) {
          p = readStringEntry(buf, p, key, s);
          const ks = key.start;
          const kl = key.length;
          for (let k = 0; k < keys.length; k++) {
            const want = keys[k];
            if (want.length !== kl || s.length === 0) continue;
            let same = true;
            for (let j = 0; j < kl; j++) if (buf[ks + j] !== want[j]) { same = false; break; }
            if (same) {
              found[2 * k] = s.start;
              found[2 * k + 1] = s.length;
              break;
            }
          }
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
    const key = this.key;
    let p = hdr[1];
    for (let i = 0; i < hdr[0]; i++) {
      p = readStringEntry(buf, p, key, s);
      this.writeEntry(tag, buf, key.start, key.length, buf, s.start, s.length, false, w);
    }
  }

  /**
   * EventData from `k=v` tokens of Data, and for Network events of Resource too (whose
   * pairs override Data's). Pairs are collected as offsets, de-duplicated by key, then
   * written; no strings are made.
   */
  private writeDerivedEventData(tag: number, buf: Uint8Array, tape: Int32Array, w: ProtoWriter): void {
    const pairs = this.pairs;
    const sources = this.pairSources;
    pairs.length = 0;
    sources.length = 0;
    const s = this.s;
    if (tape[K.data] >= 0 && readStr(buf, tape[K.data], s)) this.collectPairs(buf, s.start, s.start + s.length);
    if (strEquals(buf, tape[K.operation], B.network) && tape[K.resource] >= 0 && readStr(buf, tape[K.resource], s)) {
      // Resource is the one string not validated at ingest: its pairs come from the repaired
      // bytes, as Resource itself is sent (Go's decoder drops a stream with invalid UTF-8).
      if (this.isAscii(buf, s.start, s.length)) this.collectPairs(buf, s.start, s.start + s.length);
      else {
        const repaired = this.resourceScratch;
        this.toValidUtf8(buf, s.start, s.length, repaired);
        this.collectPairs(repaired.buf, 0, repaired.pos);
      }
    }
    // pairs: [keyStart, keyLen, valueStart, valueLen] per token, in sources[token]; a later
    // equal key wins, written where its last occurrence is.
    const n = pairs.length >> 2;
    const overridden = this.markOverridden(n);
    for (let i = 0; i < n; i++) {
      const src = sources[i];
      if (overridden[i] === 0) this.writeEntry(tag, src, pairs[4 * i], pairs[4 * i + 1], src, pairs[4 * i + 2], pairs[4 * i + 3], true, w);
    }
  }

  /**
   * overridden[i] = 1 when a later pair has the same key (keys equal once their first
   * letter is capitalised). Upstream's events carry a handful of pairs, compared pairwise;
   * past PAIRWISE_MAX a hash table keeps it linear (one ~1 MB Data of 90,000 tokens took
   * ~39 s pairwise), with a sort as the bound should a Data be crafted to collide.
   */
  private markOverridden(n: number): Uint8Array {
    if (this.overridden.length < n) this.overridden = new Uint8Array(Math.max(n, this.overridden.length * 2));
    const overridden = this.overridden;
    overridden.fill(0, 0, n);
    const pairs = this.pairs;
    if (n <= PAIRWISE_MAX) {
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++) {
          if (this.sameKey(i, j)) {
            overridden[i] = 1;
            break;
          }
        }
      }
      return overridden;
    }
    let size = 64;
    while (size < 2 * n) size *= 2;
    if (this.keyTable.length < size) this.keyTable = new Int32Array(size);
    const table = this.keyTable;
    table.fill(0, 0, size);
    const mask = size - 1;
    // Probes beyond one per pair: a good hash makes a few; far more means collisions.
    let probeBudget = 8 * n;
    for (let i = 0; i < n; i++) {
      let slot = this.hashKey(this.pairSources[i], pairs[4 * i], pairs[4 * i + 1]) & mask;
      for (;;) {
        const held = table[slot];
        if (held === 0) {
          table[slot] = i + 1;
          break;
        }
        if (this.sameKey(held - 1, i)) {
          overridden[held - 1] = 1;
          table[slot] = i + 1;
          break;
        }
        slot = (slot + 1) & mask;
        if (--probeBudget < 0) return this.markOverriddenSorted(n);
      }
    }
    return overridden;
  }

  /** markOverridden in O(n log n) whatever the keys: equal keys sort together, by position. */
  private markOverriddenSorted(n: number): Uint8Array {
    const overridden = this.overridden;
    overridden.fill(0, 0, n);
    const pairs = this.pairs;
    const sources = this.pairSources;
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => {
      const la = pairs[4 * a + 1];
      const lb = pairs[4 * b + 1];
      if (la !== lb) return la - lb;
      const ba = sources[a];
      const bb = sources[b];
      const sa = pairs[4 * a];
      const sb = pairs[4 * b];
      const d = upper(ba[sa]) - upper(bb[sb]);
      if (d !== 0) return d;
      for (let k = 1; k < la; k++) if (ba[sa + k] !== bb[sb + k]) return ba[sa + k] - bb[sb + k];
      return a - b;
    });
    for (let k = 0; k + 1 < n; k++) if (this.sameKey(order[k], order[k + 1])) overridden[order[k]] = 1;
    return overridden;
  }

  /** FNV-1a over the key (first letter capitalised) from a per-process random seed, then mixed (murmur3's finaliser). */
  private hashKey(buf: Uint8Array, start: number, len: number): number {
    let h = Math.imul(this.hashSeed ^ upper(buf[start]), 0x01000193);
    for (let k = 1; k < len; k++) h = Math.imul(h ^ buf[start + k], 0x01000193);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** True when pairs a and b have the same key once capitalised. */
  private sameKey(a: number, b: number): boolean {
    const pairs = this.pairs;
    const len = pairs[4 * a + 1];
    if (pairs[4 * b + 1] !== len) return false;
    const ba = this.pairSources[a];
    const bb = this.pairSources[b];
    const sa = pairs[4 * a];
    const sb = pairs[4 * b];
    if (upper(ba[sa]) !== upper(bb[sb])) return false;
    for (let k = 1; k < len; k++) if (ba[sa + k] !== bb[sb + k]) return false;
    return true;
  }

  /** Collects the `k=v` tokens of buf[from, end) into pairs (offsets into buf). */
  private collectPairs(buf: Uint8Array, from: number, end: number): void {
    let i = from;
    while (i < end) {
      while (i < end && (buf[i] === 0x20 || buf[i] === 0x09 || buf[i] === 0x0a || buf[i] === 0x0d)) i++;
      const start = i;
      let eq = -1;
      while (i < end && buf[i] !== 0x20 && buf[i] !== 0x09 && buf[i] !== 0x0a && buf[i] !== 0x0d) {
        if (eq < 0 && buf[i] === 0x3d) eq = i;
        i++;
      }
      if (eq > start) {
        this.pairs.push(start, eq - start, eq + 1, i - eq - 1);
        this.pairSources.push(buf);
      }
    }
  }

  private isAscii(buf: Uint8Array, start: number, length: number): boolean {
    for (let i = start; i < start + length; i++) if (buf[i] >= 0x80) return false;
    return true;
  }

  /**
   * Resource is made valid UTF-8 by deleting invalid bytes (upstream), and U+FFFD, which
   * is what invalid input became if it passed through a JS string on its way here.
   */
  private writeValidUtf8(tag: number, buf: Uint8Array, start: number, length: number, w: ProtoWriter): void {
    if (this.isAscii(buf, start, length)) {
      w.lenField(tag, buf, start, length);
      return;
    }
    const out = this.utf8Scratch;
    this.toValidUtf8(buf, start, length, out);
    if (out.pos > 0) w.lenField(tag, out.buf, 0, out.pos);
  }

  /** buf[start, start+length) without its invalid bytes and U+FFFD, into `out` (from its start). */
  private toValidUtf8(buf: Uint8Array, start: number, length: number, out: ProtoWriter): void {
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
  }
}
