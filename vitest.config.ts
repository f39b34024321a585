import { existsSync } from 'node:fs'
import { defineConfig } from 'vitest/config'

/**
 * The end-to-end flows that run a second time against a real Mosquitto 2 (test/helpers/relay.ts,
 * RELAY_TEST_BROKER=mosquitto): the core of the relay, kept to a few minutes of CI.
 */
const ON_MOSQUITTO = [
  'gpu-comes-online',
  'gateway-restart',
  'crash-recovery',
  'cancel',
  'gpu-online',
  'pc-app',
  'idempotent-submit',
].map((name) => `test/e2e/${name}.test.ts`)

// Without mosquitto the project is left out with a message; under CI=true it runs (and fails).
const mosquittoHere = [
  '/usr/sbin/mosquitto',
  '/usr/bin/mosquitto',
  '/usr/local/sbin/mosquitto',
].some((path) => existsSync(path))
if (!mosquittoHere && process.env.CI !== 'true') {
  console.warn(
    'mosquitto is not installed (apt-get install mosquitto): the mosquitto project is skipped',
  )
}

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'embedded', include: ['test/**/*.test.ts'] } },
      ...(mosquittoHere || process.env.CI === 'true'
        ? [
            {
              extends: true as const,
              test: {
                name: 'mosquitto',
                include: ON_MOSQUITTO,
                env: { RELAY_TEST_BROKER: 'mosquitto' },
              },
            },
          ]
        : []),
    ],
  },
})
