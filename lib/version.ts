/** The relay's version, reported in GPU births and the health endpoint. Keep in step with package.json. */
export const RELAY_VERSION = '0.1.0'
