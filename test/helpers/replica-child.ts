// One replica of the service for the multi-replica tests and the chaos suite: the real server
// (src/server.ts `serve`, the production composition root) with its environment from the parent,
// and two things only a test sets: shorter replica timings, and a host name of its own in the run
// ledger (pid@host), so replicas on one machine judge each other as pods on different hosts do:
// by heartbeat, never by probing a pid.
import { serve } from '../../src/server.js'
import type { ReplicaTimings } from '../../src/services.js'

const [host, timingsJson] = process.argv.slice(2)
if (!host) throw new Error('usage: replica-child.ts <host name> [replica timings as JSON]')
const replica = JSON.parse(timingsJson ?? '{}') as Partial<ReplicaTimings>
// The parent holds our stdin open; when it dies, even by SIGKILL, the pipe closes and so do we.
process.stdin.on('close', () => process.kill(process.pid, 'SIGKILL')).resume()
await serve(process.env, { liveness: { host }, replica })
