/**
 * Prometheus exposition (prom-client) and a JSON view of the same numbers, read from
 * the feeder's stats at scrape time, so the hot path keeps plain counters only.
 *   GET /metrics  Prometheus text
 *   GET /stats    FeederStats as JSON (armorfeed load reads this)
 * Plaintext on 127.0.0.1 by default. With metricsTLS it is HTTPS with the gRPC port's
 * server certificate, following its reloads; it asks for no client certificate
 * (scrapers seldom have one; bind it where only they reach it).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ConfigError, inputReasons } from '../errors';
import type { FeederStats } from '../stats';
import type { ServerMaterial } from '../tls';

/** The gRPC port's certificate and its reloads (ServerTls). */
export interface MetricsTls {
  readonly current: ServerMaterial;
  onUpdate(listener: (m: ServerMaterial) => void): void;
}

export interface MetricsServer {
  address: string;
  registry: Registry;
  close(): Promise<void>;
}

type Labels = Record<string, string>;

type Read = (s: FeederStats) => [Labels, number][];

/** A counter or gauge whose values are read from the stats at scrape time (a counter's zeros are left out). */
function metricFrom(kind: 'counter' | 'gauge', registry: Registry, name: string, help: string, labelNames: string[], read: Read, stats: () => FeederStats): void {
  const config = { name, help, labelNames, registers: [registry] };
  if (kind === 'counter') {
    new Counter({
      ...config,
      collect() {
        this.reset();
        for (const [labels, v] of read(stats())) if (v > 0) this.inc(labels, v);
      },
    });
  } else {
    new Gauge({
      ...config,
      collect() {
        this.reset();
        for (const [labels, v] of read(stats())) this.set(labels, v);
      },
    });
  }
}

function counterFrom(registry: Registry, name: string, help: string, labelNames: string[], read: Read, stats: () => FeederStats): void {
  metricFrom('counter', registry, name, help, labelNames, read, stats);
}

function gaugeFrom(registry: Registry, name: string, help: string, labelNames: string[], read: Read, stats: () => FeederStats): void {
  metricFrom('gauge', registry, name, help, labelNames, read, stats);
}

export function buildRegistry(stats: () => FeederStats): Registry {
  const r = new Registry();
  collectDefaultMetrics({ register: r, prefix: 'armorfeed_process_' });
  const client = (c: FeederStats['clients'][number]): Labels => ({ client: c.name, id: c.id, stream: c.stream });
  counterFrom(r, 'armorfeed_ingest_events_total', 'Events accepted into a ring, per source', ['source'], (s) =>
    Object.entries(s.ingest).map(([source, v]) => [{ source }, v.events]), stats);
  counterFrom(r, 'armorfeed_ingest_dropped_total', 'Events a source could not put in its ring, per reason (ring_full, malformed_input)', ['source', 'reason'], (s) =>
    Object.entries(s.ingest).flatMap(([source, v]) => [
      [{ source, reason: 'ring_full' }, v.dropped.ring_full] as [Labels, number],
      [{ source, reason: 'malformed_input' }, v.dropped.malformed_input] as [Labels, number],
    ]), stats);
  counterFrom(r, 'armorfeed_ingest_backpressure_waits_total', 'Times a source found its ring full and waited for room (ingestWhenFull block): its producers\' writes waited meanwhile', ['source'], (s) =>
    Object.entries(s.ingest).map(([source, v]) => [{ source }, v.backpressure.waits]), stats);
  gaugeFrom(r, 'armorfeed_ingest_connections', 'Producer connections open now, per source (socket and TCP)', ['source'], (s) =>
    Object.entries(s.ingest).map(([source, v]) => [{ source }, v.connections]), stats);
  counterFrom(r, 'armorfeed_ingest_disconnects_total', 'Producer connections the broker closed or refused, per source and code (bad framing, too many connections, timeouts, the buffered-bytes cap)', ['source', 'code'], (s) =>
    Object.entries(s.ingest).flatMap(([source, v]) => Object.entries(v.disconnects).map(([code, n]) => [{ source, code }, n] as [Labels, number])), stats);
  counterFrom(r, 'armorfeed_ingest_file_rotations_total', 'A followed jsonl file that was replaced (renamed away or truncated) and read again from its start', ['source'], (s) =>
    Object.entries(s.ingest).map(([source, v]) => [{ source }, v.rotations]), stats);
  counterFrom(r, 'armorfeed_source_restarts_total', 'Restarts of a socket or TCP source\'s ingest thread, by why it went down (exited, wedged: no heartbeat)', ['source', 'reason'], (s) =>
    Object.entries(s.ingest).flatMap(([source, v]) => Object.entries(v.restarts).map(([reason, n]) => [{ source, reason }, n] as [Labels, number])), stats);
  counterFrom(r, 'armorfeed_encoder_restarts_total', 'Encoder threads replaced because a task ran over encoderTaskTimeoutMs', [], (s) => [[{}, s.encoded.encoderRestarts]], stats);
  counterFrom(r, 'armorfeed_main_loop_stalls_total', 'Main-loop stalls over mainLoopStallMs (the health port said NOT_SERVING meanwhile)', [], (s) => [[{}, s.mainLoop.stalls]], stats);
  gaugeFrom(r, 'armorfeed_main_loop_delay_seconds', 'Event-loop delay of the main thread since start (perf_hooks.monitorEventLoopDelay), by quantile', ['quantile'], (s) => [
    [{ quantile: '0.5' }, s.mainLoop.delayP50Ms / 1000],
    [{ quantile: '0.99' }, s.mainLoop.delayP99Ms / 1000],
    [{ quantile: '1' }, s.mainLoop.delayMaxMs / 1000],
  ], stats);
  counterFrom(r, 'armorfeed_ingest_backpressure_seconds_total', 'Time a source spent waiting for room in its ring (ingestWhenFull block)', ['source'], (s) =>
    Object.entries(s.ingest).map(([source, v]) => [{ source }, v.backpressure.seconds]), stats);
  counterFrom(r, 'armorfeed_malformed_input_total', `Rejected input per source and detail (${inputReasons.join(', ')})`, ['source', 'detail'], (s) =>
    Object.entries(s.ingest).flatMap(([source, v]) => Object.entries(v.malformedByReason).map(([detail, n]) => [{ source, detail }, n] as [Labels, number])), stats);
  counterFrom(r, 'armorfeed_encoded_events_total', 'Events encoded, per stream', ['stream'], (s) => [
    [{ stream: 'alerts' }, s.encoded.alerts],
    [{ stream: 'logs' }, s.encoded.logs],
    [{ stream: 'messages' }, s.messages],
  ], stats);
  counterFrom(r, 'armorfeed_dropped_total', 'Drops not owned by a single client, per reason (ring_full, malformed_input, throttled, encode_error, encoded_oversized, output_backpressure)', ['reason'], (s) =>
    Object.entries(s.dropped).map(([reason, n]) => [{ reason }, n]), stats);
  counterFrom(r, 'armorfeed_client_delivered_total', 'Events written to a client and confirmed by gRPC', ['client', 'id', 'stream'], (s) =>
    s.clients.map((c) => [client(c), c.delivered]), stats);
  counterFrom(r, 'armorfeed_client_dropped_total', 'Events a client did not get, per reason (client_queue_full, throttled, filtered, client_closed, shutdown_grace_expired)', ['client', 'id', 'stream', 'reason'], (s) =>
    s.clients.flatMap((c) => Object.entries(c.dropped).map(([reason, n]) => [{ ...client(c), reason }, n] as [Labels, number])), stats);
  gaugeFrom(r, 'armorfeed_client_queue_depth', 'Events waiting in a client queue', ['client', 'id', 'stream'], (s) =>
    s.clients.filter((c) => c.open).map((c) => [client(c), c.queueDepth]), stats);
  gaugeFrom(r, 'armorfeed_client_latency_seconds', 'Ingest-to-write latency per client, by quantile (HDR histogram)', ['client', 'id', 'stream', 'quantile'], (s) =>
    s.clients.flatMap((c) =>
      ([['0.5', c.latencyUs.p50], ['0.9', c.latencyUs.p90], ['0.99', c.latencyUs.p99], ['0.999', c.latencyUs.p999], ['1', c.latencyUs.max]] as const).map(
        ([quantile, us]) => [{ ...client(c), quantile }, us / 1e6] as [Labels, number],
      ),
    ), stats);
  gaugeFrom(r, 'armorfeed_ingest_source_up', 'Whether a source is working (0 while its thread is dead or wedged and not yet restarted; health is then NOT_SERVING)', ['source'], (s) =>
    Object.entries(s.ingest).map(([source, v]) => [{ source }, v.failed ? 0 : 1]), stats);
  gaugeFrom(r, 'armorfeed_ring_used_bytes', 'Bytes in use in a source ring', ['source'], (s) =>
    Object.entries(s.ingest).map(([source, v]) => [{ source }, v.ring.usedBytes]), stats);
  gaugeFrom(r, 'armorfeed_ring_capacity_bytes', 'Capacity of a source ring', ['source'], (s) =>
    Object.entries(s.ingest).map(([source, v]) => [{ source }, v.ring.capacity]), stats);
  gaugeFrom(r, 'armorfeed_output_slabs', 'Encoder output slabs (512 KiB), by state: in_use (held by a task, queue or write), quarantined (a write its client left unconfirmed), total', ['state'], (s) => [
    [{ state: 'in_use' }, s.encoded.outputSlabs.inUse],
    [{ state: 'quarantined' }, s.encoded.outputSlabs.quarantined],
    [{ state: 'total' }, s.encoded.outputSlabs.slabs],
  ], stats);
  counterFrom(r, 'armorfeed_output_slabs_exhausted_total', 'Encoder batches that found every output slab taken and used a buffer of their own', [], (s) => [[{}, s.encoded.outputSlabs.exhausted]], stats);
  counterFrom(r, 'armorfeed_tls_reloads_total', 'Certificate reloads of the gRPC port (tlsEnabled), by result: ok (new connections use the new files), failed (the previous certificates stay in use)', ['result'], (s) =>
    s.tls === undefined ? [] : [[{ result: 'ok' }, s.tls.reloads], [{ result: 'failed' }, s.tls.reloadFailures]], stats);
  gaugeFrom(r, 'armorfeed_tls_server_cert_not_after_seconds', 'Expiry of the gRPC port\'s server certificate, Unix seconds (tlsEnabled)', [], (s) =>
    s.tls === undefined ? [] : [[{}, Date.parse(s.tls.serverCertNotAfter) / 1000]], stats);
  // armorfeed relay: per upstream and stream (stream = alerts | logs | messages).
  const upstreamRows = <T>(s: FeederStats, read: (v: NonNullable<FeederStats['relay']>['upstreams'][number]['streams']['alerts']) => T): [Labels, T][] =>
    (s.relay?.upstreams ?? []).flatMap((u) => (['alerts', 'logs', 'messages'] as const).map((stream) => [{ upstream: u.id, stream }, read(u.streams[stream])] as [Labels, T]));
  gaugeFrom(r, 'armorfeed_relay_upstream_connected', 'Whether the relay\'s stream from an upstream feeder is open (1) or not (connecting, backoff: 0)', ['upstream', 'stream'], (s) =>
    upstreamRows(s, (v) => (v.state === 'open' ? 1 : 0)), stats);
  counterFrom(r, 'armorfeed_relay_upstream_events_total', 'Events received from an upstream feeder, per stream', ['upstream', 'stream'], (s) =>
    upstreamRows(s, (v) => v.events), stats);
  counterFrom(r, 'armorfeed_relay_upstream_reconnects_total', 'Times a stream from an upstream feeder was opened again after it broke', ['upstream', 'stream'], (s) =>
    upstreamRows(s, (v) => v.reconnects), stats);
  counterFrom(r, 'armorfeed_relay_upstream_failed_attempts_total', 'Attempts to open a stream from an upstream feeder that failed (HealthCheck failed or did not echo the nonce)', ['upstream', 'stream'], (s) =>
    upstreamRows(s, (v) => v.failedAttempts), stats);
  counterFrom(r, 'armorfeed_relay_upstream_disconnected_seconds_total', 'Time a stream from an upstream feeder was not open: what the node sent meanwhile is not recovered in feeders mode', ['upstream', 'stream'], (s) =>
    upstreamRows(s, (v) => v.disconnectedSec), stats);
  counterFrom(r, 'armorfeed_relay_upstream_dropped_total', 'Events from an upstream feeder the relay dropped, per reason (malformed_upstream: not a well-formed message)', ['upstream', 'stream', 'reason'], (s) =>
    upstreamRows(s, (v) => v.malformed).map(([l, n]) => [{ ...l, reason: 'malformed_upstream' }, n] as [Labels, number]), stats);
  gaugeFrom(r, 'armorfeed_relay_serving', 'Whether the relay has a source (grpc.health.v1 SERVING): feeders, an upstream with a stream open; --from, NATS connected with the consumers running', [], (s) =>
    s.relay === undefined ? [] : [[{}, s.relay.serving ? 1 : 0]], stats);
  counterFrom(r, 'armorfeed_relay_node_events_total', 'Events relayed per node (the HostName they carry) and stream', ['node', 'stream'], (s) =>
    Object.entries(s.relay?.nodes ?? {}).flatMap(([node, c]) => (['alerts', 'logs', 'messages'] as const).map((stream) => [{ node, stream }, c[stream]] as [Labels, number])), stats);
  // armorfeed relay --from: per node and stream, the Armorfeed-Seq numbers that never arrived.
  counterFrom(r, 'armorfeed_relay_upstream_gap_total', 'Events missing from a node\'s sequence (Armorfeed-Seq) in JetStream: the node\'s export dropped them or the stream lost them (relay --from)', ['node', 'stream'], (s) =>
    Object.entries(s.relay?.jetstream?.gaps ?? {}).flatMap(([node, g]) => (['alerts', 'logs', 'messages'] as const).map((stream) => [{ node, stream }, g[stream]] as [Labels, number])), stats);
  gaugeFrom(r, 'armorfeed_relay_nats_connected', 'Whether relay --from is connected to NATS with its consumers running (health SERVING)', [], (s) =>
    s.relay?.jetstream === undefined ? [] : [[{}, s.relay.jetstream.serving ? 1 : 0]], stats);
  gaugeFrom(r, 'armorfeed_relay_consumer_pending', 'Messages in the stream after the last one a relay consumer delivered (num_pending), per subject filter', ['filter'], (s) =>
    (s.relay?.jetstream?.consumers ?? []).map((c) => [{ filter: c.filter }, c.pending] as [Labels, number]), stats);
  counterFrom(r, 'armorfeed_relay_consumer_delivered_total', 'Messages a relay consumer delivered, per subject filter', ['filter'], (s) =>
    (s.relay?.jetstream?.consumers ?? []).map((c) => [{ filter: c.filter }, c.delivered] as [Labels, number]), stats);
  counterFrom(r, 'armorfeed_relay_consumer_recreated_total', 'Times a relay\'s ordered consumer was recreated (reconnects, missed heartbeats), per subject filter', ['filter'], (s) =>
    (s.relay?.jetstream?.consumers ?? []).map((c) => [{ filter: c.filter }, c.recreated] as [Labels, number]), stats);
  counterFrom(r, 'armorfeed_relay_jetstream_thread_restarts_total', 'Times relay --from\'s JetStream thread died and was started again (its consumers resume after the last event relayed)', [], (s) =>
    s.relay?.jetstream === undefined ? [] : [[{}, s.relay.jetstream.thread.restarts]], stats);
  gaugeFrom(r, 'armorfeed_relay_replays_active', 'Clients replaying from JetStream on consumers of their own (x-armorfeed-since)', [], (s) =>
    s.relay?.jetstream === undefined ? [] : [[{}, s.relay.jetstream.replays.active]], stats);
  counterFrom(r, 'armorfeed_relay_replays_total', 'Replays by result: started, refused (over relayMaxReplays or NATS unreachable), failed (consumer not created)', ['result'], (s) =>
    s.relay?.jetstream === undefined ? [] : (['started', 'refused', 'failed'] as const).map((result) => [{ result }, s.relay?.jetstream?.replays[result] ?? 0] as [Labels, number]), stats);
  // The export (--export): offered = acked + dropped (every reason) + buffered, exactly.
  counterFrom(r, 'armorfeed_export_events_total', 'Events handed to the NATS JetStream export (Alerts, Logs, daemon Messages)', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.offered]], stats);
  counterFrom(r, 'armorfeed_export_published_total', 'Publishes sent to JetStream, retries included', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.published]], stats);
  counterFrom(r, 'armorfeed_export_retries_total', 'Publishes that were retries (same Nats-Msg-Id) after an ack timeout, a disconnect or a "try again" answer', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.retries]], stats);
  counterFrom(r, 'armorfeed_export_acked_total', 'Events JetStream acknowledged as stored (duplicates of a stored earlier attempt included)', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.acked]], stats);
  counterFrom(r, 'armorfeed_export_duplicates_total', 'Acked events JetStream reported as duplicates: an earlier attempt had been stored, its ack lost', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.duplicates]], stats);
  counterFrom(r, 'armorfeed_export_dropped_total', 'Events the export gave up, per reason (export_buffer_full, export_rejected, export_timeout, export_shutdown)', ['reason'], (s) =>
    s.export === undefined ? [] : Object.entries(s.export.dropped).map(([reason, n]) => [{ reason }, n] as [Labels, number]), stats);
  gaugeFrom(r, 'armorfeed_export_buffer_events', 'Events held by the export: waiting, waiting for a retry, or awaiting an ack', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.buffered.events]], stats);
  gaugeFrom(r, 'armorfeed_export_buffer_bytes', 'Payload bytes held by the export', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.buffered.bytes]], stats);
  gaugeFrom(r, 'armorfeed_export_in_flight', 'Publishes awaiting a JetStream ack', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.inFlight]], stats);
  gaugeFrom(r, 'armorfeed_export_connected', 'Whether the export is connected to NATS with its stream checked (1), or not (0)', ['state'], (s) =>
    s.export === undefined ? [] : [[{ state: s.export.state }, s.export.state === 'ready' ? 1 : 0]], stats);
  counterFrom(r, 'armorfeed_export_thread_restarts_total', 'Times the export thread died and was started again (what it held is counted export_rejected)', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.threadRestarts]], stats);
  counterFrom(r, 'armorfeed_export_disconnects_total', 'Times the NATS connection was lost (the client reconnects by itself)', [], (s) =>
    s.export === undefined ? [] : [[{}, s.export.disconnects]], stats);
  gaugeFrom(r, 'armorfeed_clients', 'Open Watch* streams', ['stream'], (s) =>
    (['alerts', 'logs', 'messages'] as const).map((stream) => [{ stream }, s.clients.filter((c) => c.open && c.stream === stream).length]), stats);
  return r;
}

export async function startMetrics(bind: string, port: number, stats: () => FeederStats, tls?: MetricsTls): Promise<MetricsServer> {
  const registry = buildRegistry(stats);
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        },
      );
    } else if (url === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(stats()));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('armorfeed: try /metrics or /stats\n');
    }
  };
  let server: http.Server | https.Server;
  if (tls !== undefined) {
    const secure = https.createServer({ cert: tls.current.cert, key: tls.current.key }, handle);
    tls.onUpdate((m) => secure.setSecureContext({ cert: m.cert, key: m.key }));
    server = secure;
  } else {
    server = http.createServer(handle);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new ConfigError('metricsPort', `cannot listen on ${bind}:${port}: ${err.message}`)));
    server.listen(port, bind, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    registry,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
