/**
 * The GPU service adapters the bridge knows, by name (docs/design.md §8). Each entry declares the
 * task types its service runs, its progress vocabulary (the service's status words in the relay's
 * stages) and its readiness check, and makes the adapter from its options. `BRIDGE_ADAPTER` is
 * checked against this list at start; nothing else names an adapter.
 */
import { z } from 'zod'
import { runServerEntry } from './run-server.js'
import type { AdapterEntry, AdapterOptions, GpuAdapter } from './types.js'

export const ADAPTERS: readonly AdapterEntry[] = Object.freeze([runServerEntry])

/** The adapter a bridge runs when `BRIDGE_ADAPTER` is not set. */
export const DEFAULT_ADAPTER = runServerEntry.name

export function adapterNames(): string[] {
  return ADAPTERS.map((a) => a.name)
}

export function findAdapter(name: string): AdapterEntry | undefined {
  return ADAPTERS.find((a) => a.name === name)
}

function unknownAdapterText(name: string): string {
  return `unknown adapter "${name.slice(0, 64)}"; known adapters: ${adapterNames().join(', ')}`
}

/** An adapter name from the environment: one the registry lists. */
export const AdapterName = z.string().superRefine((name, ctx) => {
  if (findAdapter(name) === undefined) {
    ctx.addIssue({ code: 'custom', message: unknownAdapterText(name) })
  }
})

/** Make the named adapter; a name the registry does not list is refused with the known ones. */
export function createAdapter(name: string, options: AdapterOptions): GpuAdapter {
  const entry = findAdapter(name)
  if (entry === undefined) throw new Error(unknownAdapterText(name))
  return entry.create(options)
}
