import { z } from 'zod'

/** Raised at start-up when the environment does not fit a component's schema; lists every bad key. */
export class ConfigError extends Error {
  readonly issues: readonly string[]
  constructor(component: string, issues: readonly string[]) {
    super(`invalid ${component} configuration:\n  ${issues.join('\n  ')}`)
    this.name = 'ConfigError'
    this.issues = issues
  }
}

/**
 * Parse environment variables once against a zod object whose keys are the variable names.
 * Empty strings count as unset, so `FOO=` in a .env file falls back to the default.
 */
export function parseEnv<S extends z.ZodObject>(
  component: string,
  schema: S,
  env: Readonly<Record<string, string | undefined>>,
): Readonly<z.infer<S>> {
  const input: Record<string, string> = {}
  for (const key of Object.keys(schema.shape)) {
    const value = env[key]
    if (value !== undefined && value !== '') input[key] = value
  }
  const result = schema.safeParse(input)
  if (!result.success) {
    throw new ConfigError(
      component,
      result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
    )
  }
  return Object.freeze(result.data)
}

/** Building blocks for env schemas. */
export const env = {
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  /** A port, or "off". */
  portOrOff: (fallback: number) =>
    z.union([z.literal('off'), z.coerce.number().int().min(0).max(65535)]).default(fallback),
  ms: (fallback: number) => z.coerce.number().int().min(1).default(fallback),
  int: (fallback: number, min = 0) => z.coerce.number().int().min(min).default(fallback),
  str: (fallback: string) => z.string().min(1).default(fallback),
  bool: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'])
      .default(fallback ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1' || v === 'yes'),
  list: (fallback: string) =>
    z
      .string()
      .default(fallback)
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      ),
  logLevel: () =>
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}
