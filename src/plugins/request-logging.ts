// Fastify's per-request lines ("incoming request", "request completed") at info for the API, and at
// debug for probes and scrapes: Kubernetes and Prometheus call those every few seconds and would fill
// the log. A probe or scrape that fails (not 2xx) is still worth a line: it is logged at warn.
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

/** Routes polled by machines: Kubernetes probes, Docker's HEALTHCHECK, Prometheus. */
export const PROBE_ROUTES: ReadonlySet<string> = new Set(['/health', '/health/live', '/health/ready', '/metrics'])

export function isProbe(request: FastifyRequest): boolean {
  const route = request.routeOptions?.url ?? request.url.split('?')[0]!
  return request.method === 'GET' && PROBE_ROUTES.has(route)
}

export class ProbeAwareLogController extends LogController {
  override incomingRequest(request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (!isProbe(request)) return super.incomingRequest(request, reply, metadata)
    if (this.isLogDisabled(request)) return
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply, metadata?: Record<string, unknown>): void {
    if (error || !isProbe(request)) return super.requestCompleted(error, request, reply, metadata)
    if (this.isLogDisabled(request)) return
    const ok = reply.statusCode >= 200 && reply.statusCode < 300
    reply.log[ok ? 'debug' : 'warn']({ res: reply, responseTime: reply.elapsedTime }, 'request completed')
  }
}
