/**
 * A fake LogService for the client tests, whose lifetime a test controls (kill, restart
 * on the same port) and whose HealthCheck answer it can set.
 */
import * as grpc from '@grpc/grpc-js';
import { feederTypes, rpcPath } from '../../src/wire/proto';

export interface FakeLogServiceOptions {
  /** What HealthCheck answers for a nonce; default echoes it. */
  healthReply?: (nonce: number) => number;
  /** Period of the alert/log generator, in ms. */
  intervalMs?: number;
}

type Rec = Record<string, unknown>;

/**
 * A fake feeder: a real LogService (grpc-js on 127.0.0.1) that sends one made-up Alert
 * and one Log every `intervalMs` to each watcher, records every call's metadata, and can
 * be killed as a crashed server would be. The `armorfeed log` tests run against it.
 */
export class FakeLogService {
  /** Every call (HealthCheck and Watch*) with its metadata, in arrival order. */
  readonly watchMetadata: Array<{ rpc: string; metadata: Record<string, string> }> = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly alertCalls = new Set<grpc.ServerWritableStream<Rec, Rec>>();
  private readonly logCalls = new Set<grpc.ServerWritableStream<Rec, Rec>>();

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
  ) {}

  static async start(port: number, opts: FakeLogServiceOptions = {}): Promise<FakeLogService> {
    const t = feederTypes();
    const codec = (type: typeof t.Alert) => ({
      serialize: (v: Rec): Buffer => Buffer.from(type.encode(type.fromObject(v)).finish()),
      deserialize: (b: Buffer): Rec => type.toObject(type.decode(b), { longs: Number }),
    });
    const method = (p: string, req: typeof t.Alert, res: typeof t.Alert, stream: boolean): grpc.MethodDefinition<Rec, Rec> => ({
      path: p,
      requestStream: false,
      responseStream: stream,
      requestSerialize: codec(req).serialize,
      requestDeserialize: codec(req).deserialize,
      responseSerialize: codec(res).serialize,
      responseDeserialize: codec(res).deserialize,
    });
    const def: grpc.ServiceDefinition = {
      HealthCheck: method(rpcPath.HealthCheck, t.NonceMessage, t.ReplyMessage, false),
      WatchMessages: method(rpcPath.WatchMessages, t.RequestMessage, t.Message, true),
      WatchAlerts: method(rpcPath.WatchAlerts, t.RequestMessage, t.Alert, true),
      WatchLogs: method(rpcPath.WatchLogs, t.RequestMessage, t.Log, true),
    };
    const server = new grpc.Server();
    // The handlers are registered before the instance exists; they find it here.
    const holder: { feeder?: FakeLogService } = {};
    const watch = (rpc: string, set: () => Set<grpc.ServerWritableStream<Rec, Rec>> | undefined) =>
      (call: grpc.ServerWritableStream<Rec, Rec>): void => {
        const md: Record<string, string> = {};
        for (const [k, v] of Object.entries(call.metadata.getMap())) md[k] = String(v);
        holder.feeder?.watchMetadata.push({ rpc, metadata: md });
        const s = set();
        if (s === undefined) return; // messages: stay silent, like upstream without debug
        s.add(call);
        call.on('cancelled', () => s.delete(call));
        call.on('close', () => s.delete(call));
      };
    server.addService(def, {
      HealthCheck: (call: grpc.ServerUnaryCall<Rec, Rec>, cb: grpc.sendUnaryData<Rec>) => {
        holder.feeder?.watchMetadata.push({ rpc: 'HealthCheck', metadata: {} });
        const nonce = Number(call.request.nonce ?? 0);
        cb(null, { Retval: opts.healthReply ? opts.healthReply(nonce) : nonce });
      },
      WatchMessages: watch('WatchMessages', () => undefined),
      WatchAlerts: watch('WatchAlerts', () => holder.feeder?.alertCalls),
      WatchLogs: watch('WatchLogs', () => holder.feeder?.logCalls),
    });
    const bound = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    const feeder = new FakeLogService(server, bound);
    holder.feeder = feeder;
    feeder.timer = setInterval(() => feeder.tick(), opts.intervalMs ?? 10);
    return feeder;
  }

  private tick(): void {
    const i = this.seq++;
    const ns = i % 2 === 0 ? 'wordpress-mysql' : 'default';
    const common = {
      Timestamp: 1700000000 + i,
      UpdatedTime: '2023-11-14T22:13:20.000000Z',
      ClusterName: 'test',
      HostName: 'node-1',
      NamespaceName: ns,
      PodName: `pod-${i}`,
      Labels: 'app=test',
      Operation: i % 3 === 0 ? 'Process' : 'File',
      PID: i,
      ExecEvent: {},
    };
    for (const c of this.alertCalls) c.write({ ...common, Type: 'MatchedPolicy', PolicyName: 'p' });
    for (const c of this.logCalls) c.write({ ...common, Type: 'ContainerLog' });
  }

  /** Drops every connection at once, as a crashed server would. */
  kill(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.server.forceShutdown();
  }
}
