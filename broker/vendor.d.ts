/** Types for the parts of aedes' helpers that ship without their own declarations. */
declare module 'qlobber/aedes/qlobber-sub.js' {
  export interface QlobberSubEntry {
    clientId: string
    topic: string
    qos: number
    rh?: number | undefined
    rap?: boolean | undefined
    nl?: boolean | undefined
  }
  export default class QlobberSub {
    constructor(options: { wildcard_one: string; wildcard_some: string; separator: string })
    subscriptionsCount: number
    add(topic: string, value: QlobberSubEntry): void
    remove(topic: string, value: { clientId: string; topic: string }): void
    match(topic: string): QlobberSubEntry[]
  }
}

declare module 'aedes-persistence/callBackPersistence.js' {
  import type { EventEmitter } from 'node:events'
  export class CallBackPersistence extends EventEmitter {
    constructor(factory: (opts: object) => object, opts?: object)
    setup(broker: unknown): Promise<void>
  }
}

declare module 'qlobber' {
  export class QlobberTrue {
    constructor(options: { wildcard_one: string; wildcard_some: string; separator: string })
    add(topic: string): void
    test(topic: string): boolean
  }
}

declare module 'aedes-packet/packet.js' {
  /** aedes' queued-packet constructor: copies the fields aedes keeps, resets messageId for QoS > 0. */
  const Packet: new <T extends object>(original: T) => T & { messageId?: number | undefined }
  export default Packet
}
