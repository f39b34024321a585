/**
 * Runs aedes-persistence's own abstract test suite (async mode) against SqlitePersistence, under
 * `node --test` as the upstream suite expects. Started by sqlite-persistence.test.ts; each
 * instance gets a fresh database file.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { SqlitePersistence } from '../../broker/sqlite-persistence.js'

const require = createRequire(import.meta.url)
const abstractSuite = require('aedes-persistence/abstract.js') as (opts: object) => void

const dir = mkdtempSync(join(tmpdir(), 'gpu-relay-abstract-'))
after(() => {
  rmSync(dir, { recursive: true, force: true })
})
let n = 0

abstractSuite({
  test,
  testAsync: true,
  persistence: () => new SqlitePersistence(join(dir, `p${String(n++)}.sqlite`)),
})
