// Plain-text and JSON renderings for command results. JSON dates are ISO strings (Date#toJSON).

export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

/** Columns padded to the widest cell; the last column is not padded. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** "label   value" lines for one record. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([label]) => label.length));
  return pairs.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

export function listOrDash(items: readonly string[]): string {
  return items.length ? items.join(', ') : '-';
}

export function isoOrNever(date: Date | null | undefined): string {
  return date ? date.toISOString() : 'never';
}
