/**
 * `armorfeed export-check`: what `serve --export` would do at start, once, with a report.
 * Connects to NATS, checks the stream (creates it when missing, with the same settings
 * as serve), publishes one daemon Message on `<prefix>.<cluster>.<node>.messages` with the
 * export's headers, reads it back by its stream sequence and prints what it found. Exits 0
 * when the event read back as sent; otherwise prints a coded error and exits non-zero
 * (2 for a bad option or a stream that does not take our subjects, 1 for the rest).
 */
import { Command, Option } from 'commander';
import { defaultConfig, envName, loadConfig, optionSpecs, type FeederConfig } from '../config';
import { ConfigError } from '../errors';
import { exitOnError } from './exit';

const CHECK_KEYS = (key: string): boolean => key.startsWith('export') || key === 'cluster' || key === 'host';

export function registerExportCheck(program: Command): void {
  const cmd = program
    .command('export-check')
    .description('check a NATS JetStream export: connect, check or create the stream, publish and read back one event')
    .option('--config <file>', 'YAML config file (env ARMORFEED_CONFIG or KUBEARMOR_CFG)')
    .option('--timeout <ms>', 'bound on each step (connect, stream, publish, read back)', '10000');
  const defaults = defaultConfig() as unknown as Record<string, unknown>;
  const specs = optionSpecs.filter((s) => CHECK_KEYS(s.key));
  for (const spec of specs) {
    cmd.addOption(new Option(`--${spec.flag} <value>`, `${spec.describe} [${envName(spec.key)}; default ${String(defaults[spec.key])}]`));
  }
  cmd.action(async (opts: Record<string, unknown>, self: Command) => {
    const flags: Partial<Record<keyof FeederConfig, unknown>> = {};
    for (const spec of specs) {
      const attr = new Option(`--${spec.flag}`).attributeName();
      if (self.getOptionValueSource(attr) === 'cli') flags[spec.key] = opts[attr];
    }
    try {
      const config = loadConfig({ flags, env: process.env, file: opts.config as string | undefined });
      if (config.export === '') throw new ConfigError('export', 'needs the NATS servers to check: --export nats://HOST:PORT[,...] (or ARMORFEED_EXPORT)');
      const timeoutMs = Number(opts.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 100) throw new ConfigError('timeout', `must be a whole number of ms, at least 100, got ${String(opts.timeout)}`);
      // The NATS client is loaded by this command only.
      const { exportCheck } = await import('../export');
      const r = await exportCheck(config, timeoutMs);
      const out = [
        `connected   ${r.server}`,
        `stream      ${r.stream} (${r.created ? 'created now' : 'existing, used as it is'}): ${r.streamSettings}`,
        `published   ${r.subject} Nats-Msg-Id=${r.msgId}`,
        `pub ack     stream=${r.pubAck.stream} seq=${r.pubAck.seq} duplicate=${r.pubAck.duplicate}`,
        `read back   ${r.readBack.subject} ${r.readBack.bytes} bytes, headers ${JSON.stringify(r.readBack.headers)}`,
        `decoded     ${JSON.stringify(r.readBack.message)}`,
        `ok          the event read back as published (${r.elapsedMs} ms)`,
      ];
      process.stdout.write(out.map((l) => `armorfeed export-check: ${l}`).join('\n') + '\n');
    } catch (err) {
      exitOnError(err);
    }
  });
}
