/** How the `edgefarm` command prints: aligned tables (kubectl's look), or JSON or YAML for scripts. */
import { dumpYaml } from '@kubernetes/client-node';
import { CliError, EXIT } from './errors.js';

/** Where a command writes: stdout for results, stderr for progress and errors. */
export interface Streams {
  out: (text: string) => void;
  err: (text: string) => void;
}

export type Format = 'table' | 'wide' | 'json' | 'yaml';

/** Columns padded to their widest cell, separated by three spaces, upper-case headers. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/**
 * YAML of plain data (the same value `-o json` prints). js-yaml 5 through @kubernetes/client-node's dumpYaml, a
 * dependency the command has anyway: no second YAML library. A value without apiVersion/kind passes its serializer
 * unchanged.
 */
export function yaml(value: unknown): string {
  return dumpYaml(value, { lineWidth: -1, noRefs: true });
}

/** `value` as `-o json` or `-o yaml` prints it; undefined for the table formats. */
export function structured(format: Format, value: unknown): string | undefined {
  if (format === 'json') return json(value);
  if (format === 'yaml') return yaml(value);
  return undefined;
}

/** "3h", "12m", "45s", "2d" (kubectl's age), negative durations as "-". */
export function age(ms: number): string {
  if (ms < 0) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** A --ttl value: <n>s, m or h, from 1 minute to `maxSeconds`; a {@link CliError} (usage) otherwise. */
export function parseTtl(text: string, maxSeconds: number): number {
  const m = /^(\d{1,6})([smh])$/.exec(text);
  const seconds = m ? Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'] : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < 60 || seconds > maxSeconds) {
    throw new CliError(
      EXIT.usage,
      `--ttl ${JSON.stringify(text.slice(0, 40))}: expected <n>s, <n>m or <n>h from 1m to ${maxSeconds / 3600}h`,
    );
  }
  return seconds;
}
