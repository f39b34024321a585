import { describe, expect, it } from 'vitest'
import { canonicalAddress, refusalOf } from '../../../gateway/webhooks/address-policy.js'
import { parseWebhookUrl, resolveTarget } from '../../../gateway/webhooks/url-guard.js'

const STRICT = { allowPrivate: false, ownPort: () => 8383 }
const LAN = { allowPrivate: true, ownPort: () => 8383 }

describe('the webhook address policy', () => {
  it('takes public unicast addresses only, judging IPv4-mapped IPv6 as the IPv4 it carries', () => {
    for (const address of ['93.184.215.14', '2606:4700::1111', '::ffff:93.184.215.14']) {
      expect([address, refusalOf(address, 443, STRICT)]).toEqual([address, null])
    }
    const refused = [
      '127.0.0.1',
      '127.255.0.9',
      '0.0.0.0',
      '10.0.0.1',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.169.254',
      '100.64.0.1',
      '224.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      'fe80::1',
      'fe80::1%eth0',
      'fc00::1',
      'fd12:3456::1',
      'ff02::1',
      '64:ff9b::a00:1', // NAT64 of 10.0.0.1
      '2002:a00:1::1', // 6to4 of 10.0.0.1
      'not an address',
    ]
    for (const address of refused) {
      expect([address, refusalOf(address, 443, STRICT)]).toEqual([address, 'private'])
    }
  })

  it("with private addresses allowed, refuses only the gateway's own listener", () => {
    expect(refusalOf('127.0.0.1', 9000, LAN)).toBeNull()
    expect(refusalOf('10.0.0.1', 8383, LAN)).toBeNull()
    expect(refusalOf('127.0.0.1', 8383, LAN)).toBe('self')
    expect(refusalOf('::ffff:127.0.0.1', 8383, LAN)).toBe('self')
    expect(refusalOf('0.0.0.0', 8383, LAN)).toBe('self')
    expect(refusalOf('::', 8383, LAN)).toBe('self')
  })

  it('writes addresses canonically', () => {
    expect(canonicalAddress('[::ffff:7f00:1]')).toBe('127.0.0.1')
    expect(canonicalAddress('0:0:0:0:0:0:0:1')).toBe('::1')
    expect(canonicalAddress('example.com')).toBeNull()
  })

  it('refuses a name when any address it resolves to is refused', async () => {
    const target = parseWebhookUrl('https://hooks.example/in')
    if (!target) throw new Error('not parsed')
    const answers = (addresses: string[]) => () =>
      Promise.resolve(
        addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      )
    expect(await resolveTarget(target, STRICT, answers(['93.184.215.14']))).toMatchObject({
      address: '93.184.215.14',
      port: 443,
    })
    expect(await resolveTarget(target, STRICT, answers(['93.184.215.14', '127.0.0.1']))).toBe(
      'private',
    )
    expect(await resolveTarget(target, STRICT, answers([]))).toBe('unresolvable')
    expect(await resolveTarget(target, STRICT, () => Promise.reject(new Error('ENOTFOUND')))).toBe(
      'unresolvable',
    )
  })
})
