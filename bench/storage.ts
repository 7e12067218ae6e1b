// npm run bench:storage [-- --events 100000 --clients 200 --users 25 --seed 7]
// Bytes on disk per raw row and per summary row (bench/lib/storage.ts), printed as JSON.
import { parseArgs } from 'node:util'
import { measureStorage } from './lib/storage.js'

const { values: flags } = parseArgs({
  options: {
    events: { type: 'string', default: '100000' },
    clients: { type: 'string', default: '200' },
    users: { type: 'string', default: '25' },
    seed: { type: 'string', default: '7' },
  },
})
const figures = await measureStorage({
  events: Number(flags.events),
  clients: Number(flags.clients),
  usersPerClient: Number(flags.users),
  seed: Number(flags.seed),
})
process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`)
