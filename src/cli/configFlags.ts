/**
 * The option table (config optionSpecs) as command-line flags, for each sub-command
 * that reads the configuration (serve, relay): one flag per option the command takes,
 * its environment variable and default in the help, and back from commander to config keys.
 */
import { Command, Option } from 'commander';
import { defaultConfig, envName, optionApplies, optionSpecs, type ConfigCommand, type FeederConfig } from '../config';

/** Adds `--config` and a flag for every option `command` takes. */
export function addConfigOptions(cmd: Command, command: ConfigCommand): Command {
  cmd.option('--config <file>', 'YAML config file (env ARMORFEED_CONFIG or KUBEARMOR_CFG)');
  const defaults = defaultConfig() as unknown as Record<string, unknown>;
  for (const spec of optionSpecs) {
    if (!optionApplies(spec, command)) continue;
    const shown = Array.isArray(defaults[spec.key]) ? (defaults[spec.key] as string[]).join(',') : String(defaults[spec.key]);
    const arg = spec.kind === 'bool' ? '[bool]' : '<value>';
    cmd.addOption(new Option(`--${spec.flag} ${arg}`, `${spec.describe} [${envName(spec.key)}; default ${shown === '' ? '""' : shown}]`));
  }
  return cmd;
}

/** The options given as flags (not defaults), by config key. */
export function configFlags(opts: Record<string, unknown>, self: Command, command: ConfigCommand): Partial<Record<keyof FeederConfig, unknown>> {
  const flags: Partial<Record<keyof FeederConfig, unknown>> = {};
  for (const spec of optionSpecs) {
    if (!optionApplies(spec, command)) continue;
    const attr = new Option(`--${spec.flag}`).attributeName();
    if (self.getOptionValueSource(attr) !== 'cli') continue;
    flags[spec.key] = opts[attr];
  }
  return flags;
}
