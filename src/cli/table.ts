// Rendering of list output. On a terminal: aligned columns under a header.
// Piped: tab-separated rows without a header, so `cut -f1` and `while read`
// work; scripts that need every field use --json instead.

export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[], forTerminal: boolean): string {
  const clean = rows.map((row) => row.map(oneLine));
  if (!forTerminal) return clean.map((row) => `${row.join('\t')}\n`).join('');
  const widths = headers.map((header, column) => Math.max(header.length, ...clean.map((row) => (row[column] ?? '').length)));
  const render = (cells: readonly string[]): string =>
    `${cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join('  ')
      .trimEnd()}\n`;
  return render(headers) + clean.map(render).join('');
}

/** Label/value pairs for `show` commands, labels aligned. */
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...fields.map(([label]) => label.length));
  return fields.map(([label, value]) => `${`${label}:`.padEnd(width + 2)}${oneLine(value)}\n`).join('');
}

// A tab or newline inside a value would break both the alignment and the
// one-row-per-line promise of piped output.
function oneLine(value: string): string {
  return value.replace(/[\t\r\n]+/g, ' ');
}

/** A timestamp as `2025-01-31 14:05:09Z`: ISO without the noise, still unambiguous. */
export function formatTimestamp(iso: string | null | undefined): string {
  if (iso === null || iso === undefined || iso === '') return '-';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** How long ago something happened: `4s ago`, `12m ago`, `3h ago`, `2d ago`. */
export function formatAge(iso: string | null | undefined, now: Date = new Date()): string {
  if (iso === null || iso === undefined || iso === '') return 'never';
  const seconds = Math.max(0, Math.round((now.getTime() - new Date(iso).getTime()) / 1000));
  if (Number.isNaN(seconds)) return iso;
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
