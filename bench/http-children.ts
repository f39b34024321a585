/** Child processes of bench/http.ts: started under tsx, awaited for their `{ url }` line, stopped. */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

const ROOT = join(import.meta.dirname, '..')

export interface Child {
  readonly url: string
  readonly pid: number
  /** VmRSS from /proc/<pid>/status, in bytes. */
  rss(): Promise<number>
  stop(): Promise<void>
}

/** Start `bench/<entry>` with `env`; resolves once it printed its URL (rejects if it exits). */
export function startChild(entry: string, env: Record<string, string>): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, entry)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref())
    await Promise.race([exited, timer])
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()))
    child.once('exit', (code) => {
      reject(new Error(`${entry} exited (${String(code)}): ${err.slice(-2000)}`))
    })
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const line = out.split('\n').find((l) => l.startsWith('{"url"'))
      if (line === undefined || child.pid === undefined) return
      const { pid } = child
      const { url } = JSON.parse(line) as { url: string }
      resolve({ url, pid, rss: () => rssOf(pid), stop })
    })
  })
}

export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${String(pid)}/status`, 'utf8')
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]
  if (kb === undefined) throw new Error(`no VmRSS for ${String(pid)}`)
  return Number(kb) * 1024
}
