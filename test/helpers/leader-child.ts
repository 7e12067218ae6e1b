// A replica reduced to its leader election, for tests that kill it: contends for the scheduler lock
// on the database given as argv[2] and prints every change of its state on stdout.
import { pino } from 'pino'
import { createSessionLock } from '../../src/db/postgres/advisory-locks.js'
import { createLeader } from '../../src/scheduler/leader.js'

const url = process.argv[2]
if (!url) throw new Error('usage: leader-child.ts <postgres url>')
const leader = createLeader({
  lock: createSessionLock({ url, lock: 'schedulerLeader', applicationName: 'usage-batch leader-child' }),
  log: pino({ level: 'silent' }),
})
leader.onChange((isLeader) => process.stdout.write(isLeader ? 'leader\n' : 'follower\n'))
await leader.start()
if (!leader.isLeader()) process.stdout.write('follower\n')
