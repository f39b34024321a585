/**
 * MQTT packets as stored by the SQLite persistence: JSON, with every Buffer (the payload, MQTT 5
 * correlation data) kept as base64 so it comes back as a Buffer, byte for byte.
 */
export interface StoredPacket {
  cmd?: string
  /** Absent on a PUBREL. */
  topic: string
  /** A Buffer from the wire; a string when published from inside the broker. */
  payload: Buffer | string
  qos?: number
  retain?: boolean
  dup?: boolean
  messageId?: number | undefined
  brokerId?: string | undefined
  brokerCounter?: number
  clientId?: string
  [key: string]: unknown
}

const BUFFER_TAG = '__buffer_b64'

export function encodePacket(packet: object): Buffer {
  return Buffer.from(
    JSON.stringify(packet, function (this: Record<string, unknown>, key, value: unknown) {
      const raw = this[key]
      if (Buffer.isBuffer(raw)) return { [BUFFER_TAG]: raw.toString('base64') }
      if (raw instanceof Uint8Array) return { [BUFFER_TAG]: Buffer.from(raw).toString('base64') }
      return value
    }),
  )
}

export function decodePacket(blob: Buffer): StoredPacket {
  const parsed: unknown = JSON.parse(blob.toString('utf8'), (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && BUFFER_TAG in value) {
      const b64 = (value as Record<string, unknown>)[BUFFER_TAG]
      return typeof b64 === 'string' ? Buffer.from(b64, 'base64') : value
    }
    return value
  })
  if (parsed === null || typeof parsed !== 'object') {
    throw new Error('stored packet is corrupt')
  }
  return parsed as StoredPacket
}
