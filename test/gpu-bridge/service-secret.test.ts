import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { apiSecretFromIni, resolveServiceSecret } from '../../gpu-bridge/service-secret.js'
import { tempDir } from '../helpers/temp-dir.js'

const INI = `; run_server's config/config.ini
[server]
upload_dir = ./uploads
api_secret = s3cret-value
file_ttl_seconds = 86400

[other]
api_secret = not-this-one
`

describe('the GPU service secret', () => {
  it("reads api_secret from run_server's [server] section, and an empty one as none", () => {
    expect(apiSecretFromIni(INI)).toBe('s3cret-value')
    expect(apiSecretFromIni('[server]\napi_secret =\n')).toBeNull()
    expect(apiSecretFromIni('[other]\napi_secret = x\n')).toBeNull()
    expect(apiSecretFromIni('[SERVER]\r\nAPI_SECRET: with spaces inside \r\n')).toBe(
      'with spaces inside',
    )
  })

  it('prefers GPU_SERVICE_SECRET, else reads the file, and names a file it cannot read', async () => {
    const dir = await tempDir('service-secret')
    const path = join(dir, 'config.ini')
    writeFileSync(path, INI)
    expect(resolveServiceSecret('from-env', path)).toBe('from-env')
    expect(resolveServiceSecret(undefined, path)).toBe('s3cret-value')
    expect(resolveServiceSecret(undefined, undefined)).toBeNull()
    expect(() => resolveServiceSecret(undefined, join(dir, 'missing.ini'))).toThrow(/missing\.ini/)
  })
})
