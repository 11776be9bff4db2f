/**
 * Guards the one place armorfeed relies on grpc-js internals (src/server/framedWrite.ts):
 * batched writes of pre-framed runs must be available with the pinned grpc-js, arrive as
 * exactly the individual messages, and the per-message fallback must produce the same.
 * If grpc-js changes the internals, the first test fails loudly and names what to check.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { frameMessage } from '../src/wire/framing';
import { framedSink, logServiceDefinition, type WriteMode } from '../src/server';
import { feederTypes } from '../src/wire/proto';
import { connect } from './helpers/client';
import { repoRoot } from './helpers/repo';

const N = 1000;
const RUN = 64;
const { Log } = feederTypes();
const bodies = Array.from({ length: N }, (_, i) =>
  Buffer.from(Log.encode({ Type: 'ContainerLog', Source: '/bin/ls', HostPID: i + 1, Resource: `/tmp/${'x'.repeat(i % 50)}` }).finish()),
);

/** Runs of RUN framed messages, the way the fan-out hands them to a sink. */
function runs(): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < N; i += RUN) out.push(Buffer.concat(bodies.slice(i, i + RUN).map((b) => frameMessage(b))));
  return out;
}

describe('framed writes - grpc-js carries pre-framed runs', () => {
  let server: grpc.Server;
  let address = '';
  const modes: WriteMode[] = [];

  before(async () => {
    server = new grpc.Server();
    const definition = logServiceDefinition();
    const write = (call: grpc.ServerWritableStream<{ Filter: string }, Buffer>): void => {
      const sink = framedSink(call as unknown as grpc.ServerWritableStream<unknown, unknown>, call.request.Filter === 'per-message' ? 'per-message' : 'batched');
      modes.push(sink.mode);
      const pending = runs();
      const next = (): void => {
        const chunk = pending.shift();
        if (chunk === undefined) {
          call.end();
          return;
        }
        sink.write(chunk, (err) => (err ? call.destroy(err) : next()));
      };
      next();
    };
    server.addService(definition, {
      HealthCheck: (call: grpc.ServerUnaryCall<{ nonce: number }, { Retval: number }>, cb: grpc.sendUnaryData<{ Retval: number }>) => cb(null, { Retval: call.request.nonce }),
      WatchMessages: write,
      WatchAlerts: write,
      WatchLogs: write,
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });

  after(() => server.forceShutdown());

  test('framed writes - the pinned grpc-js is the one installed', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const installed = JSON.parse(fs.readFileSync(path.join(repoRoot, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')) as { version: string };
    assert.match(pkg.dependencies['@grpc/grpc-js'], /^\d+\.\d+\.\d+$/, 'package.json must pin @grpc/grpc-js exactly (framedWrite.ts uses its internals)');
    assert.equal(installed.version, pkg.dependencies['@grpc/grpc-js']);
  });

  for (const mode of ['batched', 'per-message'] as const) {
    test(`framed writes - ${mode}: ${N} messages arrive one by one, in order, intact`, async () => {
      const c = connect(address);
      try {
        const w = c.watch('WatchLogs', mode);
        const status = await w.ended;
        assert.equal(status.code, grpc.status.OK, status.details);
        assert.equal(modes.at(-1), mode, mode === 'batched'
          ? 'batched writes are unavailable: grpc-js internals changed (BaseServerInterceptingCall.serializeMessage, reached as call.call); see src/server/framedWrite.ts'
          : 'per-message mode was not used');
        assert.equal(w.raw.length, N);
        for (let i = 0; i < N; i++) assert.ok(w.raw[i].equals(bodies[i]), `message ${i} differs`);
        assert.deepEqual(w.messages.map((m) => m.HostPID), Array.from({ length: N }, (_, i) => i + 1));
      } finally {
        c.close();
      }
    });
  }
});
