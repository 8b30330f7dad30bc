// End-to-end: nothing accepted is lost (issue 9, item 3). `faas-platform standalone` on its
// default, durable store (SQLite, with the in-process bus journaled beside it) accepts 64
// non-blocking invokes (202), a non-blocking sequence and (for SIGKILL) a blocking invoke whose
// wait runs out (202), then
// * is stopped with SIGTERM under a short graceful-shutdown deadline: after a restart every
//   accepted activation has a record, either its result or one saying the platform shut down;
// * is killed with SIGKILL (a crash): after a restart every accepted activation runs again and
//   gets its result, and the sequence, whose driver died with the process, is visibly failed.
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform node --test tests/e2e/noloss.test.js
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const openwhisk = require('openwhisk')
const { AUTH, api, startNode, stopPlatform, tempDataDir } = require('./support')

const N = 64
const SHUTDOWN = 'The activation was not completed because the platform shut down.'
const INTERRUPTED = 'The activation was interrupted: the platform stopped before it completed.'

// A platform on `dir` whose throttles let N invokes in at once, with a graceful-shutdown
// deadline of `deadlineMs`.
function startOn (dir, deadlineMs = 10000) {
  const config = path.join(dir, 'noloss.toml')
  fs.writeFileSync(config, `[server]\nshutdown_deadline_ms = ${deadlineMs}\n[limits]\nconcurrent_invocations = 500\ninvocations_per_minute = 5000\n`)
  return startNode('standalone', ['--listen', '127.0.0.1:0', '--data-dir', dir, '--guest-auth', AUTH, '--config', config], 30000)
}

// Polls `fn` until it returns a truthy value, for at most `ms`.
async function until (fn, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

// The record of activation `id`, or null if there is none.
async function record (ow, id) {
  try {
    return await ow.activations.get({ name: id })
  } catch (e) {
    if (e.statusCode === 404) return null
    throw e
  }
}

// Creates the slow action and a sequence of it; accepts N invokes and the sequence (all 202).
async function accept (ow, sleepMs) {
  await ow.actions.create({
    name: 'slow',
    kind: 'nodejs:default',
    action: `function main(p) { return new Promise(r => setTimeout(() => r({ n: p.n }), ${sleepMs})) }`
  })
  await ow.actions.create({ name: 'seq', action: { exec: { kind: 'sequence', components: ['/guest/slow', '/guest/slow'] } } })
  const ids = await Promise.all(Array.from({ length: N }, (_, n) =>
    ow.actions.invoke({ name: 'slow', params: { n } }).then(r => r.activationId)))
  assert.equal(new Set(ids).size, N)
  const seq = (await ow.actions.invoke({ name: 'seq', params: { n: -1 } })).activationId
  return { ids, seq }
}

test('SIGTERM: every accepted activation ends with a record, its result or "shut down"', { timeout: 180000 }, async () => {
  const dir = tempDataDir()
  // Each activation sleeps 1 s, at most 8 run at once (2048 MB for 256 MB each), and the
  // deadline is 5 s: the first ones finish, the last ones cannot.
  let running = await startOn(dir, 5000)
  let ow = openwhisk({ apihost: running.host, api_key: AUTH })
  let accepted
  try {
    assert.match(running.out, /bus: inproc:\?journal=\S+faas\.bus\.db \(durable/, running.out)
    accepted = await accept(ow, 1000)
    let said = ''
    running.proc.stdout.on('data', d => { said += d })
    running.proc.stderr.on('data', d => { said += d })
    const started = Date.now()
    const exited = new Promise(resolve => running.proc.once('exit', (code, signal) => resolve({ code, signal })))
    running.proc.kill('SIGTERM')
    const { code, signal } = await exited
    assert.equal(code, 0, `exit ${code} ${signal}:\n${said}`)
    // The deadline, the invoker's wind-down and the writing of records: well under 20 s.
    assert.ok(Date.now() - started < 20000, `shutdown took ${Date.now() - started} ms`)
    assert.match(said, /shutdown: \d+ activations and \d+ sequences or compositions did not complete/, said)
    console.log(said.match(/shutdown: .*/)[0])
  } finally {
    await stopPlatform(running.proc, 'SIGKILL')
  }

  running = await startOn(dir)
  try {
    ow = openwhisk({ apihost: running.host, api_key: AUTH })
    let completed = 0
    let shutDown = 0
    for (const id of accepted.ids) {
      const r = await record(ow, id)
      assert.ok(r, `accepted activation ${id} has no record after the restart`)
      if (r.response.success) {
        assert.equal(typeof r.response.result.n, 'number', JSON.stringify(r))
        completed++
      } else {
        assert.equal(r.response.status, 'whisk internal error', JSON.stringify(r))
        assert.equal(r.response.result.error, SHUTDOWN, JSON.stringify(r))
        assert.equal(r.name, 'slow')
        shutDown++
      }
    }
    assert.equal(completed + shutDown, N)
    console.log(`after SIGTERM: ${completed} completed, ${shutDown} recorded as shut down`)
    assert.ok(completed > 0, 'what could run within the deadline ran')
    assert.ok(shutDown > 0, 'a 5 s deadline cannot run 64 activations of 1 s, 8 at a time')
    const seq = await record(ow, accepted.seq)
    assert.ok(seq, 'the accepted sequence has no record after the restart')
    assert.equal(seq.response.success, false, JSON.stringify(seq))
    // The restarted platform keeps working.
    assert.deepEqual(await ow.actions.invoke({ name: 'slow', blocking: true, result: true, params: { n: 7 } }), { n: 7 })
  } finally {
    await stopPlatform(running.proc, 'SIGTERM')
  }
})

test('SIGKILL: accepted activations run after the restart; a sequence is visibly failed', { timeout: 240000 }, async () => {
  const dir = tempDataDir()
  let running = await startOn(dir)
  let ow = openwhisk({ apihost: running.host, api_key: AUTH })
  let accepted
  try {
    accepted = await accept(ow, 1500)
    // A blocking invoke whose wait runs out is answered 202, so it is accepted too: its
    // message (published without a journal write while the caller waited) is made durable
    // before that answer.
    const b = await api(running.host, 'POST', '/namespaces/_/actions/slow?blocking=true&timeout=100', { n: N })
    assert.equal(b.status, 202, b.text)
    accepted.ids.push(b.json.activationId)
  } finally {
    // A crash: nothing is flushed, nothing is recorded on the way out.
    await stopPlatform(running.proc, 'SIGKILL')
  }

  running = await startOn(dir)
  try {
    ow = openwhisk({ apihost: running.host, api_key: AUTH })
    const records = await until(async () => {
      const rs = await Promise.all(accepted.ids.map(id => record(ow, id)))
      return rs.every(Boolean) && rs
    }, 120000, `records of all ${N + 1} accepted activations`)
    for (const [n, r] of records.entries()) {
      assert.equal(r.response.success, true, JSON.stringify(r))
      assert.deepEqual(r.response.result, { n }, JSON.stringify(r))
    }
    const seq = await until(() => record(ow, accepted.seq), 30000, 'the sequence\'s record')
    // Its first component was queued behind the 64 (8 run at a time), so it was running
    // when the platform died; its components ran again and have their own records.
    assert.equal(seq.response.success, false, JSON.stringify(seq))
    assert.equal(seq.response.status, 'whisk internal error', JSON.stringify(seq))
    assert.equal(seq.response.result.error, INTERRUPTED, JSON.stringify(seq))
    assert.equal(seq.name, 'seq')
  } finally {
    await stopPlatform(running.proc, 'SIGTERM')
  }
})
