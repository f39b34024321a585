import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { generate } from 'selfsigned'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { endClient } from '../../lib/mqtt.js'
import { log } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('MQTT over TLS', () => {
  it('serves mqtts and wss with a configured certificate, and a client that trusts it gets in', async () => {
    const dir = await tempDir('tls')
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      extensions: [
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    })
    const certPath = join(dir, 'cert.pem')
    const keyPath = join(dir, 'key.pem')
    await writeFile(certPath, pems.cert)
    await writeFile(keyPath, pems.private)
    const broker = await startBroker(
      {
        host: '127.0.0.1',
        port: 0,
        wsPort: 0,
        persistencePath: null,
        tls: { certPath, keyPath, port: 0 },
        auth: {
          credentials: { gateway: 'gw-secret-123', admin: null, gpus: {} },
          allowAnonymous: false,
          topicRoot: 'relay',
          maxPayloadBytes: 4096,
          gatewayClientId: 'gpu-relay-gateway',
        },
      },
      { log },
    )
    onTestFinished(() => broker.close())
    expect(broker.tlsUrl).toMatch(/^mqtts:/)
    expect(broker.wsUrl).toMatch(/^wss:/)
    const login = {
      username: 'gateway',
      password: 'gw-secret-123',
      ca: pems.cert,
      reconnectPeriod: 0,
    }

    for (const url of [broker.tlsUrl ?? '', broker.wsUrl ?? '']) {
      const client = await mqtt.connectAsync(url, { ...login, clientId: `tls-${url.slice(0, 4)}` })
      onTestFinished(() => endClient(client))
      const got = new Promise<string>((resolve) =>
        client.once('message', (_t, p) => resolve(p.toString())),
      )
      await client.subscribeAsync('relay/tls', { qos: 1 })
      await client.publishAsync('relay/tls', `over ${url.split(':')[0] ?? ''}`, { qos: 1 })
      expect(await got).toBe(`over ${url.split(':')[0] ?? ''}`)
    }

    // A client that does not trust the certificate is refused at the handshake.
    await expect(
      mqtt.connectAsync(broker.tlsUrl ?? '', {
        username: login.username,
        password: login.password,
        reconnectPeriod: 0,
        clientId: 'untrusting',
      }),
    ).rejects.toThrow(/self[- ]signed|certificate/i)
  })
})
