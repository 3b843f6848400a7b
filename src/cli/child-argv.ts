/**
 * The child's argv exactly as typed: everything after the first `--`. oclif reorders non-strict argv
 * (flags first), which would corrupt `styxy run -- node server.js --port 3000`, so it is read raw.
 */
export function splitAtDoubleDash(argv: readonly string[]): {own: string[]; child: string[]} {
  const i = argv.indexOf('--')
  if (i < 0) return {own: [...argv], child: []}
  return {own: argv.slice(0, i), child: argv.slice(i + 1)}
}

/**
 * `styxy which python3 -m http.server`: the command line is everything from the first word that is not an
 * option (or after `--`); options before it, and a `--json` at the very end, are the command's own.
 */
export function splitCommandLine(argv: readonly string[]): {own: string[]; command: string[]} {
  let i = 0
  const own: string[] = []
  for (; i < argv.length && argv[i].startsWith('-'); i++) {
    if (argv[i] === '--') { i++; break }
    own.push(argv[i])
  }
  const command = argv.slice(i)
  if (command.length > 1 && command[command.length - 1] === '--json' && !argv.slice(0, i).includes('--')) own.push(command.pop()!)
  return {own, command}
}
