/**
 * The peer of bench/http.ts in its own process: a bare express 5 app with one better-sqlite3
 * insert per POST (`journal_mode=WAL`, `synchronous=FULL`) and one select by id per GET.
 * `BENCH_PEER_DB` is the file; prints `{ "url": … }` once listening; SIGTERM closes it.
 */
import { randomUUID } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Database from 'better-sqlite3'
import express from 'express'

const file = process.env.BENCH_PEER_DB ?? ''
if (file === '') throw new Error('BENCH_PEER_DB is required')
const db = new Database(file)
db.pragma('journal_mode = WAL')
db.pragma('synchronous = FULL')
db.exec(`CREATE TABLE IF NOT EXISTS tasks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, audio_hash TEXT NOT NULL,
  video_hash TEXT NOT NULL, state TEXT NOT NULL, created_at INTEGER NOT NULL)`)
const insert = db.prepare(
  "INSERT INTO tasks (id, audio_hash, video_hash, state, created_at) VALUES (?, ?, ?, 'queued', ?)",
)
const select = db.prepare('SELECT * FROM tasks WHERE id = ?')

const app = express()
app.use(express.json())
app.post('/submit', (req, res) => {
  const body = req.body as { audio_hash?: unknown; video_hash?: unknown }
  const id = randomUUID()
  insert.run(id, String(body.audio_hash), String(body.video_hash), Date.now())
  res.json({ code: 0, msg: 'ok', data: { task_id: id } })
})
/** `n` rows in one transaction (the status peer's table): their ids. */
app.post('/seed', (req, res) => {
  const n = Number(req.query.n)
  const ids: string[] = []
  db.transaction(() => {
    for (let i = 0; i < n; i += 1) {
      const id = randomUUID()
      insert.run(id, 'seed', 'seed', Date.now())
      ids.push(id)
    }
  })()
  res.json({ code: 0, msg: 'ok', data: { ids } })
})
app.get('/status', (req, res) => {
  const id = req.query.task_id
  const row = typeof id === 'string' ? select.get(id) : undefined
  res.json({ code: row === undefined ? 404 : 0, msg: 'ok', data: row ?? {} })
})
const server = app.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${String(port)}` })}\n`)
})
process.once('SIGTERM', () => {
  server.close(() => {
    db.close()
    process.exit(0)
  })
  server.closeAllConnections()
})
