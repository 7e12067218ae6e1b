// The load generator for the read benchmark, in its own process: autocannon, cycling through paths.
// Prints one JSON line: requests/s (mean), latency p50/p99 in ms, and counts of non-2xx and errors.
import autocannon from 'autocannon'

const args = JSON.parse(process.argv[2] ?? '{}') as { url: string; paths: string[]; connections: number; durationS: number; headers?: Record<string, string> }
let i = 0

const result = await autocannon({
  url: args.url,
  connections: args.connections,
  duration: args.durationS,
  ...(args.headers ? { headers: args.headers } : {}),
  requests: [
    {
      setupRequest: (req) => {
        req.path = args.paths[i++ % args.paths.length]!
        return req
      },
    },
  ],
})

process.stdout.write(
  JSON.stringify({
    requestsPerSecond: result.requests.average,
    requests: result.requests.total,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  }) + '\n',
)
