// Aligned columns for human output. (@oclif/table needs Node 22; this project runs on Node 20.)
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))))]
  const widths = headers.map((_h, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd()).join('\n')
}

/** Colour only for a terminal that wants it (NO_COLOR, non-TTY and dumb terminals get plain text). */
export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  return !!stream.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb'
}

export function paint(code: number, text: string, on: boolean): string {
  return on ? `\x1b[${code}m${text}\x1b[0m` : text
}
