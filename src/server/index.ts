/**
 * The gRPC face of the feeder: `feeder.LogService` (HealthCheck and the three Watch*
 * streams) with upstream's filter and keepalive semantics, server reflection on the
 * same port, and grpc.health.v1 on its own port (upstream v1.7.4+) as well as on the
 * main port (up to v1.7.3), so clients of either era find it. With TLS credentials the
 * main port (every service on it) is behind mTLS; the health port stays plaintext, as
 * upstream's does (Kubernetes gRPC probes cannot present a client certificate).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import { ConfigError, FilterError } from '../errors';
import { FanoutHub, Subscriber, type AttrFilter } from '../fanout';
import type { DaemonLog } from '../messages';
import { compileServerFilter } from '../wire/goRegexp';
import { acceptedFilters, feederTypes, filterMetadataKeys, protoPath, rpcPath, type StreamKind } from '../wire/proto';
import { framedSink, type WriteMode } from './framedWrite';
import type { SlabRefs } from '../encode';

export interface ServerOptions {
  bind: string;
  port: number;
  healthPort: number;
  queueSize: number;
  writeMode?: WriteMode;
  /** The encoders' output slabs, which client queues and writes hold references to. */
  slabs?: SlabRefs;
  /** Credentials of the main port (tlsEnabled: ServerTls's mTLS); plaintext when absent. */
  credentials?: grpc.ServerCredentials;
}

export interface RunningServer {
  grpcAddress: string;
  healthAddress: string | undefined;
  /** grpc.health.v1 status of feeder.LogService and of the server as a whole (""). */
  setServing(serving: boolean): void;
  /** Ends every open Watch* stream with OK. */
  endStreams(): void;
  shutdown(timeoutMs: number): Promise<void>;
}

/** Upstream: ping every 1 s, close after 5 s without an ack, pings allowed without streams. */
export const keepaliveOptions: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 1000,
  'grpc.keepalive_timeout_ms': 5000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_send_message_length': -1,
};

const streamOf: Record<string, StreamKind> = {
  WatchAlerts: 'alerts',
  WatchLogs: 'logs',
  WatchMessages: 'messages',
};

function identity(b: Buffer): Buffer {
  return b;
}

/** The service definition, with protobufjs codecs; Watch* responses are pre-encoded Buffers. */
export function logServiceDefinition(): grpc.ServiceDefinition {
  const t = feederTypes();
  const decodeRequest = (b: Buffer): { Filter: string } => t.RequestMessage.toObject(t.RequestMessage.decode(b), { defaults: true }) as { Filter: string };
  const watch = (path: string): grpc.MethodDefinition<{ Filter: string }, Buffer> => ({
    path,
    requestStream: false,
    responseStream: true,
    requestSerialize: (v: { Filter: string }) => Buffer.from(t.RequestMessage.encode(v).finish()),
    requestDeserialize: decodeRequest,
    responseSerialize: identity,
    responseDeserialize: identity,
  });
  return {
    HealthCheck: {
      path: rpcPath.HealthCheck,
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: { nonce: number }) => Buffer.from(t.NonceMessage.encode(v).finish()),
      requestDeserialize: (b: Buffer) => t.NonceMessage.toObject(t.NonceMessage.decode(b), { defaults: true }),
      responseSerialize: (v: { Retval: number }) => Buffer.from(t.ReplyMessage.encode(v).finish()),
      responseDeserialize: (b: Buffer) => t.ReplyMessage.toObject(t.ReplyMessage.decode(b), { defaults: true }),
    } as grpc.MethodDefinition<{ nonce: number }, { Retval: number }>,
    WatchMessages: watch(rpcPath.WatchMessages),
    WatchAlerts: watch(rpcPath.WatchAlerts),
    WatchLogs: watch(rpcPath.WatchLogs),
  };
}

/**
 * Reads the server-side filter extension from request metadata: karmor's rule for these
 * three (case-insensitive, unanchored Go regexps), compiled with RE2 so that no pattern
 * can hold the main thread. Throws a FilterError for a pattern the server refuses.
 */
export function parseServerFilter(metadata: grpc.Metadata): AttrFilter | undefined {
  const filter: AttrFilter = {};
  let any = false;
  for (const key of ['namespace', 'operation', 'logType'] as const) {
    const values = metadata.get(filterMetadataKeys[key]);
    if (values.length === 0) continue;
    const pattern = String(values[0]);
    if (pattern === '') continue;
    filter[key] = compileServerFilter(filterMetadataKeys[key], pattern);
    any = true;
  }
  return any ? filter : undefined;
}

function bindAsync(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function hostPort(bind: string, port: number): string {
  return bind.includes(':') ? `[${bind}]:${port}` : `${bind}:${port}`;
}

export async function startServer(options: ServerOptions, hub: FanoutHub, log: DaemonLog): Promise<RunningServer> {
  const server = new grpc.Server({ ...keepaliveOptions });
  const open = new Set<grpc.ServerWritableStream<{ Filter: string }, Buffer>>();
  const health = new HealthImplementation({ '': 'SERVING', 'feeder.LogService': 'SERVING' });

  const watch = (rpc: 'WatchAlerts' | 'WatchLogs' | 'WatchMessages') => (call: grpc.ServerWritableStream<{ Filter: string }, Buffer>) => {
    const filter = call.request.Filter ?? '';
    if (rpc !== 'WatchMessages' && !acceptedFilters[rpc].has(filter)) {
      // Upstream returns at once with OK and no messages, without registering.
      call.end();
      return;
    }
    let serverFilter: AttrFilter | undefined;
    try {
      serverFilter = parseServerFilter(call.metadata);
    } catch (err) {
      const details = err instanceof FilterError ? `${err.code}: ${err.message}` : (err as Error).message;
      log.info(`Refused a client for ${rpc} from ${call.getPeer()}: ${details}`);
      // 'error' (not destroy(), which tears the stream down before grpc-js can send the status) ends the call with this status.
      call.emit('error', Object.assign(new Error(details), { code: grpc.status.INVALID_ARGUMENT, details }));
      return;
    }
    const stream = streamOf[rpc];
    const id = hub.newId(stream);
    const named = call.metadata.get(filterMetadataKeys.clientName);
    const sub = new Subscriber(
      { id, name: named.length > 0 ? String(named[0]) : id, stream, filter, peer: call.getPeer(), serverFilter },
      options.queueSize,
      framedSink(call as unknown as grpc.ServerWritableStream<unknown, unknown>, options.writeMode),
      options.slabs,
    );
    open.add(call);
    hub.add(sub);
    // Upstream's wording; WatchMessages omits the filter.
    const what = rpc === 'WatchMessages' ? `(${id})` : `(${id}, ${filter})`;
    log.info(`Added a new client ${what} for ${rpc}${sub.info.name !== id ? ` as ${sub.info.name}` : ''} from ${sub.info.peer}`);
    let removed = false;
    const remove = (why: string): void => {
      if (removed) return;
      removed = true;
      open.delete(call);
      hub.remove(sub);
      const d = sub.dropped;
      log.info(
        `Deleted the client (${id}) for ${rpc} (${why}): delivered=${sub.delivered} dropped client_queue_full=${d.client_queue_full} throttled=${d.throttled} filtered=${d.filtered} client_closed=${d.client_closed}`,
      );
    };
    call.on('cancelled', () => remove('cancelled by the client'));
    call.on('error', (err: Error) => remove(`error: ${err.message}`));
    call.on('close', () => remove('closed'));
    call.on('finish', () => remove('ended'));
  };

  server.addService(logServiceDefinition(), {
    HealthCheck: (call: grpc.ServerUnaryCall<{ nonce: number }, { Retval: number }>, callback: grpc.sendUnaryData<{ Retval: number }>) => {
      callback(null, { Retval: call.request.nonce });
    },
    WatchMessages: watch('WatchMessages'),
    WatchAlerts: watch('WatchAlerts'),
    WatchLogs: watch('WatchLogs'),
  });
  health.addToServer(server);
  new ReflectionService(protoLoader.loadSync(protoPath)).addToServer(server);

  const listen = async (s: grpc.Server, key: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> => {
    try {
      return await bindAsync(s, hostPort(options.bind, port), credentials);
    } catch (err) {
      throw new ConfigError(key, `cannot listen on ${hostPort(options.bind, port)}: ${(err as Error).message}`);
    }
  };
  const port = await listen(server, 'gRPC', options.port, options.credentials);
  let healthServer: grpc.Server | undefined;
  let healthAddress: string | undefined;
  if (options.healthPort >= 0) {
    healthServer = new grpc.Server();
    health.addToServer(healthServer);
    try {
      healthAddress = hostPort(options.bind, await listen(healthServer, 'gRPCHealthPort', options.healthPort));
    } catch (err) {
      server.forceShutdown();
      healthServer.forceShutdown();
      throw err;
    }
  }

  const shutdownOne = (s: grpc.Server, timeoutMs: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        s.forceShutdown();
        resolve();
      }, timeoutMs);
      s.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });

  return {
    grpcAddress: hostPort(options.bind, port),
    healthAddress,
    setServing(serving) {
      const status = serving ? 'SERVING' : 'NOT_SERVING';
      health.setStatus('feeder.LogService', status);
      health.setStatus('', status);
    },
    endStreams() {
      health.setStatus('feeder.LogService', 'NOT_SERVING');
      health.setStatus('', 'NOT_SERVING');
      for (const call of [...open]) call.end();
    },
    async shutdown(timeoutMs) {
      await Promise.all([shutdownOne(server, timeoutMs), healthServer ? shutdownOne(healthServer, timeoutMs) : Promise.resolve()]);
    },
  };
}

export { framedSink, FramedChunk, enableBatchedWrites, type WriteMode } from './framedWrite';
