import { pbkdf2Sync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { mosquittoFiles, mosquittoPasswordLine } from '../../scripts/mosquitto-config.js'

const settings = {
  credentials: {
    gateway: 'gateway-secret-1',
    admin: 'admin-secret-1',
    gpus: { 'gpu-1': 'gpu-1-secret', 'gpu-2': 'gpu-2-secret' },
  },
  topicRoot: 'relay',
  host: null,
  port: 1883,
  wsPort: 8083,
  dataDir: '/var/lib/mosquitto',
  outDir: '/etc/mosquitto/relay',
  maxPayloadBytes: 256 * 1024,
}

describe('npm run mosquitto-config', () => {
  it("hashes passwords in mosquitto_passwd's $7$ format (PBKDF2-SHA512, 101 rounds, 12-byte salt)", () => {
    const line = mosquittoPasswordLine('gpu-1', 'gpu-1-secret')
    const match = /^gpu-1:\$7\$101\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(line)
    expect(match).not.toBeNull()
    const salt = Buffer.from(match?.[1] ?? '', 'base64')
    expect(salt).toHaveLength(12)
    const expected = pbkdf2Sync('gpu-1-secret', salt, 101, 64, 'sha512').toString('base64')
    expect(match?.[2]).toBe(expected)
    // A fresh salt each time.
    expect(mosquittoPasswordLine('gpu-1', 'gpu-1-secret')).not.toBe(line)
  })

  it('writes every login, the roles of the embedded broker, and the settings a backlog needs', () => {
    const files = mosquittoFiles(settings)
    expect(
      files.passwd
        .trim()
        .split('\n')
        .map((l) => l.split(':')[0]),
    ).toEqual(['gateway', 'admin', 'gpu-1', 'gpu-2'])
    const acl = files.acl.split('\n')
    const block = (user: string): string[] => {
      const start = acl.indexOf(`user ${user}`)
      const end = acl.indexOf('', start)
      return acl.slice(start + 1, end === -1 ? undefined : end)
    }
    expect(block('gateway')).toEqual(['topic readwrite relay/#'])
    expect(block('admin')).toEqual(['topic read relay/#', 'topic read $SYS/#'])
    expect(block('gpu-2')).toEqual([
      'topic write relay/gpus/gpu-2/state',
      'topic write relay/gpus/gpu-2/events',
      'topic read relay/gpus/gpu-2/tasks',
      'topic read relay/gpus/gpu-2/control',
      'topic read relay/gpus/gpu-2/state',
      'topic read relay/offers/#',
    ])
    // Nothing granted outside a user block (the lines before the first `user`).
    expect(acl.slice(0, acl.indexOf('user gateway')).filter((l) => l.startsWith('topic'))).toEqual(
      [],
    )
    const conf = files.conf.split('\n')
    for (const line of [
      'allow_anonymous false',
      'persistence true',
      'persistence_location /var/lib/mosquitto/',
      'max_queued_messages 0',
      'max_queued_bytes 0',
      'password_file /etc/mosquitto/relay/passwd',
      'acl_file /etc/mosquitto/relay/acl',
      'listener 1883',
      'listener 8083',
      'protocol websockets',
    ]) {
      expect(conf).toContain(line)
    }
    expect(conf.some((l) => l.startsWith('persistent_client_expiration'))).toBe(false)
  })

  it('refuses credentials without a gateway secret, and leaves out an admin that is not configured', () => {
    expect(() =>
      mosquittoFiles({ ...settings, credentials: { ...settings.credentials, gateway: null } }),
    ).toThrow(/GATEWAY_MQTT_SECRET/)
    const files = mosquittoFiles({
      ...settings,
      wsPort: null,
      credentials: { ...settings.credentials, admin: null },
    })
    expect(files.acl).not.toMatch(/user admin/)
    expect(files.passwd).not.toMatch(/^admin:/m)
    expect(files.conf).not.toMatch(/websockets/)
  })
})
