/**
 * `npm run bench`: every benchmark's quick version, then one `GOAL …` line per goal.
 * `BENCH_FULL=1 npm run bench` runs the full versions (bench/RESULTS.md). `BENCH_ONLY=name,…`
 * runs only the named benches (the keys below).
 */
import { goalLine, type Bench, type Goal } from './goal.js'

const BENCHES: Record<string, () => Promise<Bench>> = {
  // Each entry: a bench module's name → its `bench` export (loaded only when run).
  http: async () => (await import('./http.js')).bench,
  pipeline: async () => (await import('./pipeline.js')).bench,
}

const quick = process.env.BENCH_FULL !== '1'
const only = process.env.BENCH_ONLY?.split(',').filter((s) => s !== '')
const log = (line: string): void => {
  process.stdout.write(`${line}\n`)
}

const goals: Goal[] = []
for (const [name, load] of Object.entries(BENCHES)) {
  if (only && !only.includes(name)) continue
  log(`# ${name} (${quick ? 'quick' : 'full'})`)
  const bench = await load()
  goals.push(...(await bench({ quick, log })))
}
log('')
for (const g of goals) log(goalLine(g))
