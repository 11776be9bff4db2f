/**
 * karmor's client-side filters (kubearmor-wire.md 3.4), applied to the omitempty view
 * of an event: a field the JSON left out (empty) never matches a filter that uses it.
 * namespace, logType, operation, container and pod are case-insensitive; source and
 * resource are case-sensitive; all are unanchored regular expressions.
 */
import { compileGoRegex, type Matcher } from '../wire/goRegexp';

export { compileGoRegex };
import type { GoFields, GoValue } from './gojson';

export interface FilterOptions {
  namespace?: string;
  logType?: string;
  operation?: string;
  container?: string;
  pod?: string;
  resource?: string;
  source?: string;
  /** `-l` selectors; an event passes when any selector equals one of its `k=v` labels. */
  labels?: readonly string[];
}

interface FieldFilter {
  readonly field: string;
  readonly re: Matcher;
}

const regexFlags: ReadonlyArray<readonly [keyof FilterOptions, string, string, boolean]> = [
  // [option, event field, flag name, case-insensitive]
  ['namespace', 'NamespaceName', '--namespace', true],
  ['logType', 'Type', '--logType', true],
  ['operation', 'Operation', '--operation', true],
  ['container', 'ContainerName', '--container', true],
  ['pod', 'PodName', '--pod', true],
  ['source', 'Source', '--source', false],
  ['resource', 'Resource', '--resource', false],
];

/** The compiled filter set; `matches` is called once per received Alert or Log. */
export class EventFilter {
  private readonly fieldFilters: readonly FieldFilter[];
  private readonly selectors: readonly string[];

  constructor(opts: FilterOptions) {
    const list: FieldFilter[] = [];
    for (const [opt, field, flagName, ci] of regexFlags) {
      const pattern = opts[opt];
      if (typeof pattern === 'string' && pattern !== '') list.push({ field, re: compileGoRegex(flagName, pattern, ci) });
    }
    this.fieldFilters = list;
    this.selectors = (opts.labels ?? []).filter((s) => s !== '');
  }

  /** True when no filter is set, so callers can skip building the field map. */
  get isEmpty(): boolean {
    return this.fieldFilters.length === 0 && this.selectors.length === 0;
  }

  matches(fields: GoFields): boolean {
    if (this.isEmpty) return true;
    const byKey = new Map<string, GoValue>(fields);
    const labels = byKey.get('Labels');
    // Events without Labels (host events) skip the selector check, as in karmor.
    if (this.selectors.length > 0 && typeof labels === 'string') {
      const items = labels.split(',');
      if (!this.selectors.some((sel) => items.includes(sel))) return false;
    }
    for (const { field, re } of this.fieldFilters) {
      const v = byKey.get(field);
      if (typeof v !== 'string' || !re.test(v)) return false;
    }
    return true;
  }
}
