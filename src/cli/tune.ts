import type { Command } from 'commander';

export function registerTune(_program: Command): void {
  // Not implemented yet.
}
