/**
 * Open a SQLite file in WAL mode, also on a full disk. WAL keeps its index in a `-shm` file that
 * SQLite must allocate on the disk when it opens the database; with no free block left that
 * fails (SQLITE_IOERR_SHMSIZE) and the process could not start until space returns. Then the
 * file is opened again in exclusive locking mode, where the WAL index lives in memory (no
 * `-shm`): the process starts, reads everything, and refuses only the writes the disk cannot
 * take. Other processes cannot read the file meanwhile (only while the disk is full at start).
 */
import Database from 'better-sqlite3'

export interface OpenedDatabase {
  readonly db: Database.Database
  /** Opened in exclusive locking mode because the disk was full. */
  readonly exclusive: boolean
}

export function openWalDatabase(path: string, pragmas: readonly string[] = []): OpenedDatabase {
  const db = new Database(path)
  try {
    db.pragma('journal_mode = WAL')
    for (const pragma of pragmas) db.pragma(pragma)
    return { db, exclusive: false }
  } catch (err) {
    db.close()
    if (!isNoSpace(err)) throw err
  }
  const again = new Database(path)
  try {
    // Before the first access of the WAL database: then SQLite never maps a -shm file.
    again.pragma('locking_mode = EXCLUSIVE')
    again.pragma('journal_mode = WAL')
    for (const pragma of pragmas) again.pragma(pragma)
    return { db: again, exclusive: true }
  } catch (err) {
    again.close()
    throw err
  }
}

function isNoSpace(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : null
  return code === 'SQLITE_IOERR_SHMSIZE' || code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE'
}
