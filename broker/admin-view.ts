/**
 * What the read-only admin login sees (MQTT Explorer, README "MQTT Explorer"). MQTT Explorer
 * subscribes to `#` and `$SYS/#` and draws every topic it receives as a tree, so the admin may
 * subscribe to `#` (or a filter starting with `+`), but is forwarded only:
 * - topics under the relay's root (`relay/…`): GPU state, task offers and snapshots, the queue,
 *   power, control and events, all JSON without secrets (no credential and no file byte ever
 *   travels over MQTT: files go over HTTP);
 * - `$SYS/…`: the broker's own figures (broker/sys-topics.ts) and aedes' announcements.
 * Anything else a client may publish (only possible with MQTT_ALLOW_ANONYMOUS, development only)
 * is another party's traffic and never reaches the admin. A filter that can match nothing the
 * admin may receive (`other/#`) is refused at SUBSCRIBE (SUBACK 0x80).
 */

export interface AdminView {
  maySubscribe(filter: string): boolean
  mayReceive(topic: string): boolean
}

export const SYS_PREFIX = '$SYS/'

export function adminView(topicRoot: string): AdminView {
  const root = `${topicRoot}/`
  return Object.freeze({
    maySubscribe: (filter: string) =>
      filter === '#' ||
      filter.startsWith('+/') ||
      filter === '+' ||
      filter.startsWith(root) ||
      filter.startsWith(SYS_PREFIX),
    mayReceive: (topic: string) => topic.startsWith(root) || topic.startsWith(SYS_PREFIX),
  })
}
