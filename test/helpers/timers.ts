// A manual timer pair for the scheduler: nothing fires until the test moves the clock.
import type { Timers } from '../../src/scheduler/scheduler.js'

export function manualTimers(clock: { now(): number; set(ms: number): void }) {
  let nextId = 0
  const pending = new Map<number, { fn: () => void; dueMs: number }>()
  const timers: Timers = {
    setTimeout(fn, ms) {
      nextId += 1
      pending.set(nextId, { fn, dueMs: clock.now() + ms })
      return nextId
    },
    clearTimeout(handle) {
      pending.delete(handle as number)
    },
  }
  return {
    timers,
    pendingCount: () => pending.size,
    /**
     * Moves the clock to `targetMs`, stopping at each timer's due instant to fire it (as a real
     * timer would), then awaiting `settle` so work started by the timer finishes at that instant.
     */
    async advanceTo(targetMs: number, settle: () => Promise<void>) {
      for (;;) {
        let nextEntry: [number, { fn: () => void; dueMs: number }] | undefined
        for (const entry of pending) if (!nextEntry || entry[1].dueMs < nextEntry[1].dueMs) nextEntry = entry
        if (!nextEntry || nextEntry[1].dueMs > targetMs) break
        pending.delete(nextEntry[0])
        clock.set(Math.max(clock.now(), nextEntry[1].dueMs))
        nextEntry[1].fn()
        await settle()
      }
      clock.set(targetMs)
    },
  }
}
