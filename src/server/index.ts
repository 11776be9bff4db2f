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
import { ConfigError, FilterError, ReplayError, type ReplayErrorCode } from '../errors';
import { FanoutHub, Subscriber, type AttrFilter } from '../fanout';
import type { DaemonLog } from '../messages';
import { compileServerFilter } from '../wire/goRegexp';
import { acceptedFilters, feederTypes, filterMetadataKeys, protoPath, rpcPath, type StreamKind } from '../wire/proto';
import { framedSink, type WriteMode } from './framedWrite';
import { HealthPort } from './healthPort';
import type { RunningServer } from './running';
import { runMainTestHook, TEST_HOOK_METADATA_KEY, testHooksEnabled } from '../testHooks';
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
  /** The health port's thread says NOT_SERVING once the main loop has not run for this long (healthPort.ts). */
  mainLoopStallMs: number;
  /** Gives a Watch* stream a feed of its own instead of the hub's (relay --from: replay). */
  route?: FeedRouter;
  /**
   * grpc.health.v1 from the first answer on (default true). A relay starts NOT_SERVING: set
   * here, not by setServing() after the start, or the health port's thread could answer
   * SERVING in between (it reads the status on its own clock).
   */
  serving?: boolean;
}

/** A Watch* stream's own feed; closed when the stream ends. */
export interface OwnFeed {
  close(): void;
}

/**
 * Decides, before a Watch* stream is added, whether it gets a feed of its own (from its
 * request metadata): returns the feed, or undefined for the hub's shared one. Throws a
 * ReplayError to refuse the stream. `end` ends the stream later with a status (its feed failed).
 */
export type FeedRouter = (sub: Subscriber, metadata: grpc.Metadata, end: (code: grpc.status, details: string) => void) => OwnFeed | undefined;

const replayStatus: Record<ReplayErrorCode, grpc.status> = {
  ERR_REPLAY_INVALID: grpc.status.INVALID_ARGUMENT,
  ERR_REPLAY_LIMIT: grpc.status.RESOURCE_EXHAUSTED,
  ERR_REPLAY_UNAVAILABLE: grpc.status.UNAVAILABLE,
};

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

/**
 * Reads the per-node view (x-armorfeed-node: NAME[,NAME...]) from request metadata: the
 * stream then carries only events whose HostName is one of them. Undefined without one.
 */
export function parseNodeView(metadata: grpc.Metadata): ReadonlySet<string> | undefined {
  const values = metadata.get(filterMetadataKeys.node);
  if (values.length === 0) return undefined;
  const names = String(values[0]).split(',').map((n) => n.trim()).filter((n) => n !== '');
  return names.length > 0 ? new Set(names) : undefined;
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
  const open = new Map<grpc.ServerWritableStream<{ Filter: string }, Buffer>, Subscriber>();
  const initial = options.serving === false ? 'NOT_SERVING' : 'SERVING';
  const health = new HealthImplementation({ '': initial, 'feeder.LogService': initial });

  const watch = (rpc: 'WatchAlerts' | 'WatchLogs' | 'WatchMessages') => (call: grpc.ServerWritableStream<{ Filter: string }, Buffer>) => {
    const filter = call.request.Filter ?? '';
    if (rpc !== 'WatchMessages' && !acceptedFilters[rpc].has(filter)) {
      // Upstream returns at once with OK and no messages, without registering.
      call.end();
      return;
    }
    const hook = call.metadata.get(TEST_HOOK_METADATA_KEY);
    if (testHooksEnabled && hook.length > 0) runMainTestHook(String(hook[0]));
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
    const nodes = parseNodeView(call.metadata);
    const sub = new Subscriber(
      { id, name: named.length > 0 ? String(named[0]) : id, stream, filter, peer: call.getPeer(), serverFilter, ...(nodes !== undefined ? { nodes } : {}) },
      options.queueSize,
      framedSink(call as unknown as grpc.ServerWritableStream<unknown, unknown>, options.writeMode),
      options.slabs,
    );
    const endCall = (code: grpc.status, details: string): void => {
      call.emit('error', Object.assign(new Error(details), { code, details }));
    };
    let feed: OwnFeed | undefined;
    try {
      feed = options.route?.(sub, call.metadata, endCall);
    } catch (err) {
      const code = err instanceof ReplayError ? replayStatus[err.code] : grpc.status.INTERNAL;
      const details = err instanceof ReplayError ? `${err.code}: ${err.message}` : (err as Error).message;
      log.info(`Refused a client for ${rpc} from ${call.getPeer()}: ${details}`);
      endCall(code, details);
      return;
    }
    open.set(call, sub);
    hub.add(sub, feed !== undefined);
    // Upstream's wording; WatchMessages omits the filter.
    const what = rpc === 'WatchMessages' ? `(${id})` : `(${id}, ${filter})`;
    const view = nodes !== undefined ? ` (node ${[...nodes].join(',')})` : '';
    log.info(`Added a new client ${what} for ${rpc}${sub.info.name !== id ? ` as ${sub.info.name}` : ''}${view} from ${sub.info.peer}`);
    let removed = false;
    const remove = (why: string): void => {
      if (removed) return;
      removed = true;
      open.delete(call);
      feed?.close();
      hub.remove(sub);
      const d = sub.dropped;
      log.info(
        `Deleted the client (${id}) for ${rpc} (${why}): delivered=${sub.delivered} dropped client_queue_full=${d.client_queue_full} throttled=${d.throttled} filtered=${d.filtered} client_closed=${d.client_closed} shutdown_grace_expired=${d.shutdown_grace_expired}`,
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
  // The health port is served from a thread of its own, so that it can say NOT_SERVING
  // while the main loop is stalled (healthPort.ts).
  let healthPort: HealthPort | undefined;
  let healthAddress: string | undefined;
  if (options.healthPort >= 0) {
    try {
      healthPort = await HealthPort.start(hostPort(options.bind, options.healthPort), options.mainLoopStallMs, options.serving !== false);
      healthAddress = hostPort(options.bind, healthPort.port);
    } catch (err) {
      server.forceShutdown();
      throw err;
    }
  }

  /** Streams endStreams ended, until each has sent its status (or its stream closed). */
  const ending: Promise<void>[] = [];

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
    mainLoopStalls: () => healthPort?.stalls ?? 0,
    setServing(serving) {
      const status = serving ? 'SERVING' : 'NOT_SERVING';
      health.setStatus('feeder.LogService', status);
      health.setStatus('', status);
      healthPort?.setServing(serving);
    },
    endStreams(cutOff) {
      health.setStatus('feeder.LogService', 'NOT_SERVING');
      health.setStatus('', 'NOT_SERVING');
      healthPort?.setServing(false);
      for (const [call, sub] of [...open]) {
        // grpc-js emits 'cancelled' once the status is handed to HTTP/2 (after the last
        // DATA frame) or once the stream closed without one.
        if (!call.cancelled) ending.push(new Promise((resolve) => call.once('cancelled', () => resolve())));
        const details = cutOff?.(sub);
        if (details === undefined) {
          call.end();
          continue;
        }
        // UNAVAILABLE: gRPC's "try again later", what a client of a restarting upstream
        // KubeArmor sees (its connection drops), and what the relay and armorfeed log
        // reconnect on. The trailers follow the writes already handed to grpc-js; a
        // client whose window stays closed never gets them and sees the connection
        // close (UNAVAILABLE too) when the server stops.
        call.emit('error', Object.assign(new Error(details), { code: grpc.status.UNAVAILABLE, details }));
      }
    },
    async shutdown(timeoutMs) {
      // Why wait before tryShutdown: tryShutdown closes each HTTP/2 session (GOAWAY), and
      // grpc-js 1.14.7 keeps its keepalive timer running on a closed session; at the next
      // ping (within keepalive_time_ms, 1 s) node's session.ping() refuses a closed session
      // ("Ping returned false") and grpc-js destroys the session at once, dropping the trailers and the writes still queued behind a slow
      // client's flow-control window (the client sees RST_STREAM CANCEL and no status).
      // So the streams ended above get to send their status on open sessions first;
      // only then are the sessions closed, and all within the same bound.
      const until = Date.now() + timeoutMs;
      const health = healthPort?.close(timeoutMs);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(ending), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
      await Promise.all([shutdownOne(server, Math.max(0, until - Date.now())), health]);
    },
  };
}

export { closeClients } from './closeClients';
export type { RunningServer, ServerAddresses } from './running';
export { MainLoopMonitor, type MainLoopStats } from './mainLoop';
export { framedSink, FramedChunk, enableBatchedWrites, type WriteMode } from './framedWrite';
