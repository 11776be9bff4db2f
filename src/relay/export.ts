/**
 * `relay --feeders --export`: the relay puts the nodes it dials on JetStream, as if each
 * ran `armorfeed serve --export` (upstream KubeArmor nodes cannot): one export per node
 * (HostName), each with its own subjects `<prefix>.<cluster>.<node>.*`, node id and
 * sequence numbers, so a relay --from downstream tracks gaps per node as for armorfeed
 * nodes. The relay's own daemon messages go out under its --host.
 *
 *   feeders --> Upstream --> RelayBatcher --batch per node--> FanoutHub (clients)
 *                                         └──────────────────> RelayExports --> NodeExport(node) --> export thread --> NATS
 *
 * Each node's export has its own NATS connection (all in one export thread) and buffer (exportBufferEvents per node): a
 * cluster of a few hundred nodes is a few hundred connections. Past MAX_EXPORTED_NODES,
 * a new node's events are not exported and are counted (export_nodes_over_limit).
 * What a node sent while the relay was not connected to it is not recovered (feeders
 * mode has no replay) and leaves no gap in the exported sequence: the relay numbers what
 * it received.
 */
import type { EncodedBatch } from '../encode';
import { ExportThread, type NodeExport, type ExportLog, type ExportSettings, type ExportStats } from '../export';

const MAX_EXPORTED_NODES = 1000;

export class RelayExports {
  private readonly exporters = new Map<string, NodeExport>();
  /** One thread for every node's export: each has its own connection there. */
  private readonly thread: ExportThread;
  /** Events of nodes past MAX_EXPORTED_NODES: not exported. */
  overLimit = 0;

  constructor(
    private readonly settings: ExportSettings,
    log: ExportLog,
  ) {
    this.thread = new ExportThread(log);
  }

  /** The relay's own exporter (its daemon messages), started first: a stream that does not take our subjects stops the start. */
  async start(): Promise<void> {
    const own = this.thread.open(this.settings);
    this.exporters.set(this.settings.host, own);
    await own.started();
  }

  private exporterFor(node: string): NodeExport | undefined {
    let e = this.exporters.get(node);
    if (e === undefined) {
      if (this.exporters.size >= MAX_EXPORTED_NODES) return undefined;
      // Not waited for: its events wait in its buffer until its stream is checked.
      e = this.thread.open({ ...this.settings, host: node });
      this.exporters.set(node, e);
    }
    return e;
  }

  offerBatch(batch: EncodedBatch, node: string): void {
    const e = this.exporterFor(node);
    if (e === undefined) this.overLimit += batch.alerts.count + batch.logs.count;
    else e.offerBatch(batch);
  }

  offerMessage(encoded: Uint8Array, node: string = this.settings.host): void {
    const e = this.exporterFor(node);
    if (e === undefined) this.overLimit++;
    else e.offerMessage(encoded);
  }

  /** Per node (HostName). */
  stats(): Record<string, ExportStats> {
    return Object.fromEntries([...this.exporters].map(([node, e]) => [node, e.stats()]));
  }

  /** The relay's own exporter's stats (FeederStats.export, as serve reports it). */
  ownStats(): ExportStats | undefined {
    return this.exporters.get(this.settings.host)?.stats();
  }

  async flush(deadline: number): Promise<void> {
    await Promise.all([...this.exporters.values()].map((e) => e.flush(deadline)));
  }

  async close(): Promise<void> {
    await this.thread.close();
  }
}
