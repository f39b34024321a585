/**
 * Opening the inbox whatever is on the disk: a file SQLite cannot read (a crash mid-write on a
 * bad disk, a truncated copy, garbage) is moved aside with its WAL and the bridge starts with an
 * empty inbox. Nothing is lost for good: the gateway's birth reconcile re-publishes every queued
 * task of this GPU the bridge does not hold, and re-queues the ones it held as running
 * (docs/design.md §3.3).
 */
import { existsSync, renameSync } from 'node:fs'
import { Inbox } from './inbox.js'

export interface InboxOpenEvents {
  /** A row that no longer parses was removed (the rest of the inbox is kept). */
  readonly onCorruptRow: (taskId: string) => void
  /** The whole file was unreadable and moved to `movedTo`. */
  readonly onMovedAside: (movedTo: string, err: unknown) => void
}

export function openInbox(path: string, events: InboxOpenEvents, now = Date.now()): Inbox {
  try {
    return Inbox.checked(path, events.onCorruptRow)
  } catch (err) {
    const movedTo = `${path}.damaged-${String(now)}`
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix)
    }
    events.onMovedAside(movedTo, err)
    return Inbox.checked(path, events.onCorruptRow)
  }
}
