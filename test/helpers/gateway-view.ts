import { z } from 'zod'
import { requestJson } from '../../lib/http-client.js'

const Health = z.object({
  gpu: z.object({
    online: z.boolean(),
    gpus: z.array(
      z.object({
        id: z.string(),
        online: z.boolean(),
        ready: z.boolean(),
        service: z.string().nullable(),
        epoch: z.number(),
      }),
    ),
  }),
})

/** The gateway's view of one GPU, from the health endpoint. */
export async function gpuPresence(
  gatewayUrl: string,
  gpuId = 'gpu-1',
): Promise<{ online: boolean; ready: boolean; service: string | null; epoch: number }> {
  const reply = await requestJson(`${gatewayUrl}/api/heygem/health`)
  const health = Health.parse(reply.body)
  const gpu = health.gpu.gpus.find((g) => g.id === gpuId)
  return gpu ?? { online: false, ready: false, service: null, epoch: -1 }
}
