/**
 * wire contract - proto/kubearmor.proto must match upstream's kubearmor.proto as
 * documented in kubearmor-wire.md §1.1 and §1.2 (read from ../shared at test time, not
 * copied here, so the proto is checked against an independent source and not against
 * itself). The negative tests feed deliberately broken copies through the same
 * comparison to show that it can fail.
 */
import { test, describe } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { feederTypes, protoPath, rpcPath } from '../src/wire/proto';
import { sharedDir } from './helpers/repo';
import {
  compareContract,
  contractFromProto,
  parseWireDoc,
  WireDocError,
  type MessageSpec,
  type WireContract,
} from './helpers/wire-doc';

const wireDocPath = path.join(sharedDir, 'kubearmor-wire.md');

/** Row counts of upstream's messages; the parser must find exactly these. */
const EXPECTED_FIELD_COUNTS: Readonly<Record<string, number>> = {
  NonceMessage: 1,
  ReplyMessage: 1,
  RequestMessage: 1,
  Message: 8,
  Podowner: 3,
  ExecEvent: 2,
  Alert: 44,
  Log: 34,
};

const EXPECTED_RPCS: Readonly<Record<string, [request: string, response: string, serverStreaming: boolean]>> = {
  HealthCheck: ['NonceMessage', 'ReplyMessage', false],
  WatchMessages: ['RequestMessage', 'Message', true],
  WatchAlerts: ['RequestMessage', 'Alert', true],
  WatchLogs: ['RequestMessage', 'Log', true],
};

function readWireDoc(): string {
  if (!fs.existsSync(wireDocPath)) {
    assert.fail(
      `wire contract: ${wireDocPath} is missing. This test compares proto/kubearmor.proto with the ` +
        'upstream tables in the shared folder: ../shared beside the repository, or $ARMORFEED_SHARED (.ci/run finds it).',
    );
  }
  return fs.readFileSync(wireDocPath, 'utf8');
}

/** Count checks that keep the doc parser honest: no silent pass on missing or extra rows. */
function docCountProblems(doc: WireContract): string[] {
  const out: string[] = [];
  const names = doc.messages.map((m) => m.name);
  const expectedNames = Object.keys(EXPECTED_FIELD_COUNTS);
  if ([...names].sort().join() !== [...expectedNames].sort().join()) {
    out.push(`§1.2 messages: found [${names.join(', ')}], expected [${expectedNames.join(', ')}]`);
  }
  for (const m of doc.messages) {
    const want = EXPECTED_FIELD_COUNTS[m.name];
    if (want !== undefined && m.fields.length !== want) out.push(`§1.2 ${m.name}: ${m.fields.length} rows, expected ${want}`);
    if (m.statedCount !== undefined && m.statedCount !== m.fields.length) {
      out.push(`§1.2 ${m.name}: heading says ${m.statedCount} fields, table has ${m.fields.length}`);
    }
  }
  if (doc.rpcs.length !== 4) out.push(`§1.1: ${doc.rpcs.length} RPC rows, expected 4`);
  return out;
}

function message(doc: WireContract, name: string): MessageSpec {
  const m = doc.messages.find((x) => x.name === name);
  assert.ok(m, `message ${name} not found`);
  return m;
}

/** Parses proto source the way feederTypes() loads the file (protobufjs defaults). */
function contractFromSource(source: string): WireContract {
  const root = protobuf.parse(source).root;
  root.resolveAll();
  return contractFromProto(root, 'feeder');
}

/** Applies one textual edit to the real proto and insists the edit took effect. */
function alteredProto(search: RegExp, replacement: string): string {
  const source = fs.readFileSync(protoPath, 'utf8');
  const altered = source.replace(search, replacement);
  assert.notEqual(altered, source, `self-test edit ${search} did not change proto/kubearmor.proto`);
  return altered;
}

describe('wire contract - proto matches upstream tables', () => {
  const markdown = readWireDoc();
  const doc = parseWireDoc(markdown);
  const proto = contractFromProto(feederTypes().root, doc.packageName);

  test('wire contract - the doc tables parse to upstream row counts', () => {
    assert.deepEqual(docCountProblems(doc), []);
    assert.equal(doc.packageName, 'feeder');
    assert.deepEqual(doc.serviceNames, ['feeder.LogService']);
    // Field numbers 1..N are all used in Alert and Log (doc: "none is reserved").
    for (const name of ['Alert', 'Log', 'Message']) {
      const numbers = message(doc, name).fields.map((f) => f.number);
      assert.deepEqual(numbers, numbers.map((_, k) => k + 1), `${name} numbers are not 1..${numbers.length} in order`);
    }
  });

  test('wire contract - Go key-order lines are permutations of the field sets', () => {
    for (const name of ['Alert', 'Log', 'Message']) {
      const m = message(doc, name);
      assert.ok(m.goKeyOrder, `§1.2 ${name}: no "Go ... key order" line found`);
      assert.equal(new Set(m.goKeyOrder).size, m.goKeyOrder.length, `${name}: key order repeats a key`);
      assert.deepEqual(
        [...m.goKeyOrder].sort(),
        m.fields.map((f) => f.name).sort(),
        `${name}: key-order line and field table name different fields`,
      );
    }
    // Message's Go order is stated to be its declaration order.
    const msg = message(doc, 'Message');
    assert.deepEqual(msg.goKeyOrder, msg.fields.map((f) => f.name));
  });

  test('wire contract - package, service and RPCs match §1.1', () => {
    assert.ok(/^\s*syntax\s*=\s*"proto3"\s*;/m.test(fs.readFileSync(protoPath, 'utf8')), 'proto is not proto3');
    assert.equal(proto.packageName, 'feeder');
    assert.deepEqual(proto.serviceNames, ['feeder.LogService']);
    assert.deepEqual(proto.rpcs.map((r) => r.name).sort(), Object.keys(EXPECTED_RPCS).sort());
    for (const rpc of proto.rpcs) {
      const [request, response, serverStreaming] = EXPECTED_RPCS[rpc.name];
      assert.equal(rpc.requestType, request, `${rpc.name} request type`);
      assert.equal(rpc.responseType, response, `${rpc.name} response type`);
      assert.equal(rpc.requestStream, false, `${rpc.name} must not be client-streaming`);
      assert.equal(rpc.responseStream, serverStreaming, `${rpc.name} server-streaming flag`);
    }
    // The doc's table says the same, and the paths the server registers are the documented ones.
    for (const rpc of doc.rpcs) {
      assert.deepEqual(
        [rpc.requestType, rpc.responseType, rpc.responseStream],
        EXPECTED_RPCS[rpc.name],
        `§1.1 row ${rpc.name}`,
      );
      assert.equal(rpc.path, `/feeder.LogService/${rpc.name}`);
      assert.equal(rpcPath[rpc.name as keyof typeof rpcPath], rpc.path, `src/wire/proto.ts rpcPath.${rpc.name}`);
    }
  });

  test('wire contract - every message field matches §1.2 both ways', () => {
    assert.deepEqual(compareContract(doc, proto), []);
  });

  test('wire contract - maps, repeated and sub-message fields have the documented shapes', () => {
    const { root } = feederTypes();
    for (const [name, number] of [['Alert', 43], ['Log', 33]] as const) {
      const f = root.lookupType(`feeder.${name}`).fields.EventData;
      assert.ok(f instanceof protobuf.MapField, `${name}.EventData is not a map`);
      assert.equal(f.keyType, 'string');
      assert.equal(f.type, 'string');
      assert.equal(f.id, number);
    }
    const aTags = root.lookupType('feeder.Alert').fields.ATags;
    assert.equal(aTags.repeated, true);
    assert.equal(aTags.type, 'string');
    assert.equal(aTags.id, 30);
    for (const [name, owner, exec] of [['Alert', 31, 36], ['Log', 24, 27]] as const) {
      const t = root.lookupType(`feeder.${name}`);
      assert.equal(t.fields.Owner.resolvedType?.fullName, '.feeder.Podowner');
      assert.equal(t.fields.Owner.id, owner);
      assert.equal(t.fields.ExecEvent.resolvedType?.fullName, '.feeder.ExecEvent');
      assert.equal(t.fields.ExecEvent.id, exec);
    }
  });

  describe('wire contract - the comparison can fail', () => {
    const cases: Array<[string, RegExp, string, RegExp]> = [
      ['a renumbered field', /string UserName = 44;/, 'string UserName = 45;', /^Alert\.UserName: proto has "string UserName = 45"/],
      ['a missing field', /\n\s*string Cwd = 25;/, '', /^Log\.Cwd: missing from proto/],
      ['an extra field', /string UserName = 44;/, 'string UserName = 44;\n  string Extra = 45;', /^Alert\.Extra: in proto but not in doc/],
      ['a scalar type change', /int32 PPID = 10;(?=[\s\S]*message Log)/, 'int64 PPID = 10;', /^Alert\.PPID: proto has "int64 PPID = 10"/],
      ['ATags no longer repeated', /repeated string ATags = 30;/, 'string ATags = 30;', /^Alert\.ATags: proto has "string ATags = 30"/],
      ['a map value type change', /map<string, string> EventData = 33;/, 'map<string, int32> EventData = 33;', /^Log\.EventData: proto has "map<string,int32>/],
      ['a sub-message swapped', /Podowner Owner = 31;/, 'ExecEvent Owner = 31;', /^Alert\.Owner: proto has "message:feeder\.ExecEvent Owner = 31"/],
      ['a lost stream flag', /returns \(stream Log\)/, 'returns (Log)', /^rpc WatchLogs: proto ".*returns \(Log\)"/],
      ['a fifth RPC', /rpc WatchLogs/, 'rpc WatchMore(RequestMessage) returns (stream Log);\n  rpc WatchLogs', /^rpc WatchMore: in proto but not in doc/],
      ['an extra enum', /message Podowner/, 'enum Kind { KIND_UNSET = 0; }\nmessage Podowner', /^message Enum:Kind: in proto but not in doc/],
    ];
    for (const [what, search, replacement, expected] of cases) {
      test(`wire contract - ${what} in the proto is reported`, () => {
        const problems = compareContract(doc, contractFromSource(alteredProto(search, replacement)));
        assert.ok(problems.length > 0, `${what}: the comparison reported nothing`);
        assert.ok(
          problems.some((p) => expected.test(p)),
          `${what}: expected a problem matching ${expected}, got:\n${problems.join('\n')}`,
        );
      });
    }

    test('wire contract - the unaltered proto source compares clean (control)', () => {
      assert.deepEqual(compareContract(doc, contractFromSource(fs.readFileSync(protoPath, 'utf8'))), []);
    });

    test('wire contract - a doc with a renumbered row is reported', () => {
      const altered = markdown.replace('| UserName | 34 | string | no |', '| UserName | 35 | string | no |');
      assert.notEqual(altered, markdown);
      const problems = compareContract(parseWireDoc(altered), proto);
      assert.ok(problems.some((p) => p.startsWith('Log.UserName: proto has "string UserName = 34"')), problems.join('\n'));
    });

    test('wire contract - a doc with a deleted row fails the count check', () => {
      const altered = markdown.replace('| HashAlgo | 42 | string | no |\n', '');
      assert.notEqual(altered, markdown);
      const problems = docCountProblems(parseWireDoc(altered));
      assert.ok(problems.some((p) => p.startsWith('§1.2 Alert: 43 rows, expected 44')), problems.join('\n'));
    });

    test('wire contract - a doc with an unreadable cell or no table is rejected', () => {
      assert.throws(
        () => parseWireDoc(markdown.replace('| PPID | 10 | int32 |', '| PPID | 10 | integer |')),
        (err: unknown) => err instanceof WireDocError && /unrecognised Type cell "integer"/.test(err.message),
      );
      const noAlertTable = markdown.replace(/(#### Alert[^\n]*\n)[\s\S]*?(\n#### Log)/, '$1\n$2');
      assert.notEqual(noAlertTable, markdown);
      assert.throws(() => parseWireDoc(noAlertTable), /§1\.2 Alert: expected 1 field table, found 0/);
      assert.throws(() => parseWireDoc('# nothing here\n'), /heading for §1/);
    });
  });
});
