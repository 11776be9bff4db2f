/**
 * Real nats-server processes for the export tests: one server or a three-server cluster
 * on free loopback ports, JetStream on (-js) with a temporary store directory each, and
 * what the tests read back from a stream. Every wait is bounded; servers still running
 * when the test process exits are SIGKILLed (helpers/serve.ts), and their store
 * directories are removed by stop().
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { TestContext } from 'node:test';
import { startProcess, type ServeProcess } from './serve';
import { withTimeout } from './wait';

/** nats-server: $NATS_SERVER, Debian's /usr/sbin/nats-server, or the one on PATH. */
export const natsServerBin = process.env.NATS_SERVER ?? (fs.existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server');

const READY = /Server is ready/;

/**
 * `n` distinct free TCP ports on 127.0.0.1: all are held open until all are found, so
 * one call never returns a port twice (free when asked; whoever binds first gets it).
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => resolve(srv));
    })),
  );
  const ports = servers.map((srv) => (srv.address() as net.AddressInfo).port);
  await Promise.all(servers.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  return ports;
}

export interface NatsServerOptions {
  port?: number;
  storeDir?: string;
  /** Cluster membership: this server's route port, every route of the cluster, a name. */
  cluster?: { name: string; routePort: number; routes: number[] };
  serverName?: string;
}

export class NatsServer {
  private proc: ServeProcess | undefined;

  private constructor(
    readonly port: number,
    readonly storeDir: string,
    private readonly args: string[],
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  static async start(o: NatsServerOptions = {}): Promise<NatsServer> {
    const port = o.port ?? (await freePorts(1))[0];
    const storeDir = o.storeDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'armorfeed-nats-'));
    const args = ['-js', '-sd', storeDir, '-a', '127.0.0.1', '-p', String(port)];
    if (o.serverName !== undefined) args.push('-n', o.serverName);
    if (o.cluster !== undefined) {
      args.push('--cluster_name', o.cluster.name, '--cluster', `nats://127.0.0.1:${o.cluster.routePort}`);
      args.push('--routes', o.cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
    }
    const server = new NatsServer(port, storeDir, args);
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    this.proc = await startProcess(natsServerBin, this.args, { readyPattern: READY, readyTimeoutMs: 15_000 });
  }

  /** Sends `signal` (SIGKILL: an unclean end; SIGSTOP/SIGCONT: a stall) to the server. */
  signal(signal: NodeJS.Signals): void {
    this.proc?.child.kill(signal);
  }

  /** SIGKILLs the server and waits until it is gone; the store directory stays. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (proc !== undefined) await proc.stop('SIGKILL', 5000);
  }

  /** Starts the server again with the same port, store directory and cluster. */
  async restart(): Promise<void> {
    if (this.proc !== undefined) await this.kill();
    await this.launch();
  }

  /** Stops the server (SIGCONT first, in case it was stopped) and removes its store. */
  async stop(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (proc !== undefined) {
      proc.child.kill('SIGCONT');
      await proc.stop('SIGTERM', 5000);
    }
    fs.rmSync(this.storeDir, { recursive: true, force: true });
  }
}

/** Three JetStream servers routed to each other on loopback. */
export async function startNatsCluster(size = 3): Promise<NatsServer[]> {
  const ports = await freePorts(2 * size);
  const routePorts = ports.slice(size);
  const name = `af${process.pid}`;
  return Promise.all(
    routePorts.map((routePort, i) => NatsServer.start({ port: ports[i], serverName: `${name}-${i}`, cluster: { name, routePort, routes: routePorts } })),
  );
}

export interface StoredEvent {
  streamSeq: number;
  subject: string;
  headers: Record<string, string>;
  data: Uint8Array;
}

/** A client connection for reading what the export stored. */
export function natsClient(servers: string | string[]): Promise<NatsConnection> {
  return withTimeout(connect({ servers, timeout: 5000 }), 10_000, `a NATS connection to ${String(servers)}`);
}

/** Messages in the stream and per subject. */
export async function streamCounts(nc: NatsConnection, stream: string, withinMs = 45_000): Promise<{ messages: number; subjects: Record<string, number> }> {
  // A cluster that just lost a server answers JetStream API requests only once it has
  // elected new leaders, which on a busy machine can take longer than one request's
  // timeout: ask again until `withinMs` has passed.
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      const jsm = await jetstreamManager(nc, { timeout: 10_000, checkAPI: false });
      const info = await jsm.streams.info(stream, { subjects_filter: '>' });
      return { messages: info.state.messages, subjects: info.state.subjects ?? {} };
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * The first `expected` messages of `stream` on `subject` (the caller knows how many there
 * are: streamCounts), in stream order, through an ordered consumer; bounded by `timeoutMs`.
 */
export async function readStream(nc: NatsConnection, stream: string, subject: string, expected: number, timeoutMs = 60_000): Promise<StoredEvent[]> {
  // A cluster that just lost a server may take longer than the default 5 s to place a consumer.
  // Placing it is a JetStream API request like streamCounts', asked again until the
  // whole bound has passed (a CI run saw one 20 s request go unanswered after a restart).
  const deadline = Date.now() + timeoutMs;
  const js = jetstream(nc, { timeout: 15_000 });
  let consumer: Awaited<ReturnType<typeof js.consumers.get>>;
  for (;;) {
    try {
      consumer = await js.consumers.get(stream, { filter_subjects: subject });
      break;
    } catch (err) {
      if (Date.now() >= deadline - 15_000) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const out: StoredEvent[] = [];
  const messages = await consumer.consume({ max_messages: 2000 });
  const reading = (async () => {
    for await (const m of messages as AsyncIterable<JsMsg>) {
      const headers: Record<string, string> = {};
      for (const key of m.headers?.keys() ?? []) headers[key] = m.headers?.get(key) ?? '';
      out.push({ streamSeq: m.seq, subject: m.subject, headers, data: m.data });
      // Not `pending === 0`: an ordered consumer that is recreated (a server came back and
      // the stream moved) can report 0 pending midway.
      if (out.length >= expected) break;
    }
  })();
  try {
    await withTimeout(reading, Math.max(15_000, deadline - Date.now()), `${expected} messages of ${subject} from stream ${stream} (got ${out.length})`);
  } finally {
    await messages.close();
  }
  return out;
}

/** A nats-server of its own for one test (`t`), with a client and a JetStream manager on it; all stopped after the test. */
export async function natsForTest(t: TestContext): Promise<{ nats: NatsServer; nc: NatsConnection; jsm: JetStreamManager }> {
  const nats = await NatsServer.start();
  t.after(() => nats.stop());
  const nc = await natsClient(nats.url);
  t.after(() => nc.close());
  return { nats, nc, jsm: await jetstreamManager(nc) };
}
