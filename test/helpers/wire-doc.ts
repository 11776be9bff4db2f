/**
 * Reads the wire contract out of kubearmor-wire.md §1 (markdown tables written from
 * upstream's kubearmor.proto) and out of a protobufjs Root, into one neutral shape, and
 * compares the two. The parser is deliberately strict: a row, heading or cell it does
 * not recognise is an error rather than something to skip, so an edited or truncated
 * document cannot make the contract test pass on fewer rows than upstream has.
 */
import * as protobuf from 'protobufjs';

export type FieldLabel = 'single' | 'repeated' | 'map';

export interface FieldSpec {
  name: string;
  number: number;
  /** A scalar name (`int32`, `string`, ...) or `message:<package>.<Name>`; for maps, the value type. */
  type: string;
  label: FieldLabel;
  /** Only for maps. */
  keyType?: string;
}

export interface MessageSpec {
  name: string;
  fields: FieldSpec[];
  /** The `(N fields` count stated in the heading, when the heading states one. */
  statedCount?: number;
  /** The "Go ... key order" line that follows the table, when there is one. */
  goKeyOrder?: string[];
}

export interface RpcSpec {
  name: string;
  path: string;
  requestType: string;
  responseType: string;
  requestStream: boolean;
  responseStream: boolean;
}

export interface WireContract {
  packageName: string;
  /** Fully qualified, e.g. `feeder.LogService`. */
  serviceNames: string[];
  rpcs: RpcSpec[];
  messages: MessageSpec[];
}

const SCALARS = new Set([
  'double', 'float', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64',
  'fixed32', 'fixed64', 'sfixed32', 'sfixed64', 'bool', 'string', 'bytes',
]);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class WireDocError extends Error {
  override readonly name = 'WireDocError';
}

/** Lines from the heading matching `start` up to (not including) the next heading of the same or higher level. */
function section(lines: string[], start: RegExp, what: string): string[] {
  const from = lines.findIndex((l) => start.test(l));
  if (from < 0) throw new WireDocError(`kubearmor-wire.md: heading for ${what} (${start}) not found`);
  const level = /^(#+)\s/.exec(lines[from])?.[1].length ?? 0;
  const stop = new RegExp(`^#{1,${level}}\\s`);
  let to = from + 1;
  while (to < lines.length && !stop.test(lines[to])) to++;
  return lines.slice(from, to);
}

function splitRow(line: string): string[] {
  const t = line.trim();
  return t.slice(1, t.endsWith('|') ? -1 : undefined).split('|').map((c) => c.trim());
}

/** Strips markdown emphasis and code marks from a cell. */
function plain(cell: string): string {
  return cell.replace(/\*\*|`/g, '').trim();
}

interface Table {
  header: string[];
  rows: string[][];
}

/** Every pipe table in `lines`: a header row, a `|---|` separator, then data rows up to the first non-table line. */
function tables(lines: string[], what: string): Table[] {
  const out: Table[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim().startsWith('|')) continue;
    const header = splitRow(lines[i]).map(plain);
    const sep = lines[i + 1] ?? '';
    if (!/^\s*\|(\s*:?-{3,}:?\s*\|)+\s*$/.test(sep)) {
      throw new WireDocError(`${what}: table row without a header separator: ${lines[i].trim()}`);
    }
    const rows: string[][] = [];
    let j = i + 2;
    for (; j < lines.length && lines[j].trim().startsWith('|'); j++) {
      const cells = splitRow(lines[j]);
      if (cells.length !== header.length) {
        throw new WireDocError(`${what}: row has ${cells.length} cells, header has ${header.length}: ${lines[j].trim()}`);
      }
      rows.push(cells);
    }
    out.push({ header, rows });
    i = j - 1;
  }
  return out;
}

function startsWith(header: string[], expected: string[]): boolean {
  return expected.every((h, k) => header[k] === h);
}

/** Parses a Type cell: `int32`, `map<string,string>` or `Podowner (message)`. */
function parseTypeCell(cell: string, packageName: string, where: string): { type: string; keyType?: string } {
  const t = plain(cell);
  const map = /^map<\s*(\w+)\s*,\s*(\w+)\s*>$/.exec(t);
  if (map !== null) {
    return { keyType: map[1], type: SCALARS.has(map[2]) ? map[2] : `message:${packageName}.${map[2]}` };
  }
  const msg = /^(\w+) \(message\)$/.exec(t);
  if (msg !== null) return { type: `message:${packageName}.${msg[1]}` };
  if (SCALARS.has(t)) return { type: t };
  throw new WireDocError(`${where}: unrecognised Type cell "${cell}"`);
}

/** Parses a Repeated? cell: `no ...`, `**repeated**` or `**map**: ...`. */
function parseLabelCell(cell: string, where: string): FieldLabel {
  const t = plain(cell).toLowerCase();
  if (/^no\b/.test(t)) return 'single';
  if (/^repeated\b/.test(t)) return 'repeated';
  if (/^map\b/.test(t)) return 'map';
  throw new WireDocError(`${where}: unrecognised Repeated? cell "${cell}"`);
}

const FIELD_HEADER = ['Field', 'No.', 'Type', 'Repeated?'];
const RPC_HEADER = ['RPC', 'Full gRPC path', 'Request', 'Response', 'Streaming'];

/** Parses kubearmor-wire.md §1 (package, §1.1 services, §1.2 messages). */
export function parseWireDoc(markdown: string): WireContract {
  const lines = markdown.split(/\r?\n/);
  const s1 = section(lines, /^## 1\.\s/, '§1');

  const pkg = /\*\*package:\s*`([\w.]+)`\*\*/.exec(s1.join('\n'));
  if (pkg === null) throw new WireDocError('§1: no "**package: `...`**" line');
  const packageName = pkg[1];

  // §1.1: the service named in bold code, and the RPC table.
  const s11 = section(s1, /^### 1\.1\s/, '§1.1');
  const services = [...s11.join('\n').matchAll(/\*\*`([\w.]+\.\w+)`\*\*/g)].map((m) => m[1]);
  const uniqueServices = [...new Set(services)];
  if (uniqueServices.length === 0) throw new WireDocError('§1.1: no service named as **`package.Service`**');
  const rpcTables = tables(s11, '§1.1').filter((t) => startsWith(t.header, RPC_HEADER));
  if (rpcTables.length !== 1) throw new WireDocError(`§1.1: expected 1 RPC table, found ${rpcTables.length}`);
  const rpcs = rpcTables[0].rows.map((cells): RpcSpec => {
    const where = `§1.1 row "${cells[0]}"`;
    const streaming = plain(cells[4]).toLowerCase();
    let requestStream: boolean;
    let responseStream: boolean;
    if (/^unary\b/.test(streaming)) [requestStream, responseStream] = [false, false];
    else if (/^server-streaming\b/.test(streaming)) [requestStream, responseStream] = [false, true];
    else if (/^client-streaming\b/.test(streaming)) [requestStream, responseStream] = [true, false];
    else if (/^bidi/.test(streaming)) [requestStream, responseStream] = [true, true];
    else throw new WireDocError(`${where}: unrecognised Streaming cell "${cells[4]}"`);
    const rpc: RpcSpec = {
      name: plain(cells[0]),
      path: plain(cells[1]),
      requestType: plain(cells[2]),
      responseType: plain(cells[3]),
      requestStream,
      responseStream,
    };
    for (const v of [rpc.name, rpc.requestType, rpc.responseType]) {
      if (!IDENT.test(v)) throw new WireDocError(`${where}: "${v}" is not an identifier`);
    }
    return rpc;
  });

  // §1.2: one #### subsection per message, each with one field table.
  const s12 = section(s1, /^### 1\.2\s/, '§1.2');
  const messages: MessageSpec[] = [];
  const starts = s12.map((l, k) => (/^####\s/.test(l) ? k : -1)).filter((k) => k >= 0);
  for (let n = 0; n < starts.length; n++) {
    const sub = s12.slice(starts[n], n + 1 < starts.length ? starts[n + 1] : s12.length);
    const heading = /^####\s+(\w+)(.*)$/.exec(sub[0]);
    if (heading === null) throw new WireDocError(`§1.2: unrecognised heading "${sub[0]}"`);
    const name = heading[1];
    const where = `§1.2 ${name}`;
    const stated = /\((\d+) fields\b/.exec(heading[2]);
    const fieldTables = tables(sub, where).filter((t) => startsWith(t.header, FIELD_HEADER));
    if (fieldTables.length !== 1) throw new WireDocError(`${where}: expected 1 field table, found ${fieldTables.length}`);
    const fields = fieldTables[0].rows.map((cells): FieldSpec => {
      const fieldName = plain(cells[0]);
      const at = `${where}.${fieldName}`;
      if (!IDENT.test(fieldName)) throw new WireDocError(`${where}: "${cells[0]}" is not a field name`);
      if (!/^\d+$/.test(plain(cells[1]))) throw new WireDocError(`${at}: "${cells[1]}" is not a field number`);
      const { type, keyType } = parseTypeCell(cells[2], packageName, at);
      const label = parseLabelCell(cells[3], at);
      if ((label === 'map') !== (keyType !== undefined)) {
        throw new WireDocError(`${at}: Type "${cells[2]}" and Repeated? "${cells[3]}" disagree about being a map`);
      }
      return { name: fieldName, number: Number(plain(cells[1])), type, label, ...(keyType === undefined ? {} : { keyType }) };
    });
    const spec: MessageSpec = { name, fields };
    if (stated !== null) spec.statedCount = Number(stated[1]);
    const orderLines = sub.filter((l) => /^Go\b[^:]*\bkey order\b/.test(l));
    if (orderLines.length > 1) throw new WireDocError(`${where}: ${orderLines.length} key-order lines`);
    if (orderLines.length === 1) {
      const m = /^Go\b[^:]*?\bkey order\b(?:[^:]*?\bfor (\w+))?[^:]*:\s*(.+?)\.?\s*$/.exec(orderLines[0]);
      if (m === null) throw new WireDocError(`${where}: unrecognised key-order line "${orderLines[0]}"`);
      if (m[1] !== undefined && m[1] !== name) {
        throw new WireDocError(`${where}: key-order line is for "${m[1]}", under the heading for "${name}"`);
      }
      spec.goKeyOrder = m[2].split(',').map((k) => k.trim());
      for (const k of spec.goKeyOrder) {
        if (!IDENT.test(k)) throw new WireDocError(`${where}: key-order entry "${k}" is not a field name`);
      }
    }
    messages.push(spec);
  }

  return { packageName, serviceNames: uniqueServices, rpcs, messages };
}

/** The same shape, read from a resolved protobufjs Root for one package. */
export function contractFromProto(root: protobuf.Root, packageName: string): WireContract {
  const ns = root.lookup(packageName);
  if (!(ns instanceof protobuf.Namespace)) throw new Error(`proto: package "${packageName}" not found`);
  const messages: MessageSpec[] = [];
  const serviceNames: string[] = [];
  const rpcs: RpcSpec[] = [];
  for (const obj of ns.nestedArray) {
    if (obj instanceof protobuf.Type) {
      messages.push({ name: obj.name, fields: obj.fieldsArray.map(fieldFromProto) });
    } else if (obj instanceof protobuf.Service) {
      const fullName = obj.fullName.replace(/^\./, '');
      serviceNames.push(fullName);
      for (const m of obj.methodsArray) {
        rpcs.push({
          name: m.name,
          path: `/${fullName}/${m.name}`,
          requestType: m.resolvedRequestType?.name ?? m.requestType,
          responseType: m.resolvedResponseType?.name ?? m.responseType,
          requestStream: m.requestStream === true,
          responseStream: m.responseStream === true,
        });
      }
    } else {
      // Enums and nested namespaces are not in §1; report them as an extra "message".
      messages.push({ name: `${obj.constructor.name}:${obj.name}`, fields: [] });
    }
  }
  return { packageName, serviceNames, rpcs, messages };
}

function protoTypeName(field: protobuf.FieldBase): string {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return `message:${resolved.fullName.replace(/^\./, '')}`;
  if (resolved instanceof protobuf.Enum) return `enum:${resolved.fullName.replace(/^\./, '')}`;
  return field.type;
}

function fieldFromProto(field: protobuf.FieldBase): FieldSpec {
  if (field instanceof protobuf.MapField) {
    return { name: field.name, number: field.id, type: protoTypeName(field), label: 'map', keyType: field.keyType };
  }
  return { name: field.name, number: field.id, type: protoTypeName(field), label: field.repeated ? 'repeated' : 'single' };
}

function describe(f: FieldSpec): string {
  const t = f.label === 'map' ? `map<${f.keyType},${f.type}>` : f.label === 'repeated' ? `repeated ${f.type}` : f.type;
  return `${t} ${f.name} = ${f.number}`;
}

/** Differences between two messages, both ways; empty when they match. */
export function compareMessage(expected: MessageSpec, actual: MessageSpec): string[] {
  const out: string[] = [];
  const m = expected.name;
  for (const [side, spec] of [['doc', expected], ['proto', actual]] as const) {
    const seenNames = new Set<string>();
    const seenNumbers = new Set<number>();
    for (const f of spec.fields) {
      if (seenNames.has(f.name)) out.push(`${m}: ${side} declares field ${f.name} twice`);
      if (seenNumbers.has(f.number)) out.push(`${m}: ${side} uses field number ${f.number} twice`);
      seenNames.add(f.name);
      seenNumbers.add(f.number);
    }
  }
  const byName = new Map(actual.fields.map((f) => [f.name, f]));
  for (const e of expected.fields) {
    const a = byName.get(e.name);
    if (a === undefined) {
      out.push(`${m}.${e.name}: missing from proto (doc: ${describe(e)})`);
    } else if (describe(a) !== describe(e)) {
      out.push(`${m}.${e.name}: proto has "${describe(a)}", doc has "${describe(e)}"`);
    }
  }
  const docNames = new Set(expected.fields.map((f) => f.name));
  for (const a of actual.fields) {
    if (!docNames.has(a.name)) out.push(`${m}.${a.name}: in proto but not in doc (${describe(a)})`);
  }
  return out;
}

/** Differences between the documented contract and the proto, both ways; empty when they match. */
export function compareContract(doc: WireContract, proto: WireContract): string[] {
  const out: string[] = [];
  if (doc.packageName !== proto.packageName) out.push(`package: doc "${doc.packageName}", proto "${proto.packageName}"`);
  const sameSet = (a: string[], b: string[]): boolean => a.length === b.length && [...a].sort().join() === [...b].sort().join();
  if (!sameSet(doc.serviceNames, proto.serviceNames)) {
    out.push(`services: doc [${doc.serviceNames.join(', ')}], proto [${proto.serviceNames.join(', ')}]`);
  }

  const protoRpcs = new Map(proto.rpcs.map((r) => [r.name, r]));
  const rpcText = (r: RpcSpec): string =>
    `${r.path} (${r.requestStream ? 'stream ' : ''}${r.requestType}) returns (${r.responseStream ? 'stream ' : ''}${r.responseType})`;
  for (const e of doc.rpcs) {
    const a = protoRpcs.get(e.name);
    if (a === undefined) out.push(`rpc ${e.name}: missing from proto`);
    else if (rpcText(a) !== rpcText(e)) out.push(`rpc ${e.name}: proto "${rpcText(a)}", doc "${rpcText(e)}"`);
  }
  const docRpcNames = new Set(doc.rpcs.map((r) => r.name));
  for (const a of proto.rpcs) if (!docRpcNames.has(a.name)) out.push(`rpc ${a.name}: in proto but not in doc`);

  const protoMessages = new Map(proto.messages.map((msg) => [msg.name, msg]));
  for (const e of doc.messages) {
    const a = protoMessages.get(e.name);
    if (a === undefined) out.push(`message ${e.name}: missing from proto`);
    else out.push(...compareMessage(e, a));
  }
  const docMessageNames = new Set(doc.messages.map((msg) => msg.name));
  for (const a of proto.messages) if (!docMessageNames.has(a.name)) out.push(`message ${a.name}: in proto but not in doc`);
  return out;
}
