/**
 * The one migration style of every SQLite database in the project (the gateway's, the broker's,
 * the bridge's inbox): a numbered list of SQL steps. `PRAGMA user_version` records how many have
 * been applied; each missing step runs in order, in its own transaction together with the new
 * version, so a crash leaves the database at a whole step. Steps are only ever appended: a step
 * that has shipped is never edited (a database that applied it would never see the change).
 */
import type Database from 'better-sqlite3'

/** One step: SQL, or a function for a step SQL alone cannot say (a column only some files lack). */
export type MigrationStep = string | ((db: Database.Database) => void)

/** Apply the steps of `steps` the database has not applied yet; returns its version after. */
export function migrate(db: Database.Database, steps: readonly MigrationStep[]): number {
  const current = db.pragma('user_version', { simple: true }) as number
  for (let version = current; version < steps.length; version++) {
    const step = steps[version]
    if (step === undefined) break
    db.transaction(() => {
      if (typeof step === 'string') db.exec(step)
      else step(db)
      db.pragma(`user_version = ${String(version + 1)}`)
    })()
  }
  return Math.max(current, steps.length)
}
