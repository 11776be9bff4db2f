import type { Command } from 'commander';

export function registerLog(_program: Command): void {
  // Not implemented yet.
}
