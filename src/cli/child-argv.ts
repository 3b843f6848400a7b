/**
 * The child's argv exactly as typed: everything after the first `--`. oclif reorders non-strict argv
 * (flags first), which would corrupt `styxy run -- node server.js --port 3000`, so it is read raw.
 */
export function splitAtDoubleDash(argv: readonly string[]): {own: string[]; child: string[]} {
  const i = argv.indexOf('--')
  if (i < 0) return {own: [...argv], child: []}
  return {own: argv.slice(0, i), child: argv.slice(i + 1)}
}
