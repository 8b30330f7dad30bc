// End-to-end: the built-in alarms provider (`whisk.system/alarms`) with the `openwhisk` npm
// client against `faas-platform standalone` (its default SQLite store): `feeds.create` with a
// cron of a 1 s seconds field fires the trigger every second and its rule runs the action with
// the alarm's payload; `feeds.get` reads the alarm back; the platform SIGKILLed and restarted
// on the same data directory goes on firing it; `feeds.delete` stops the fires; a `once`
// alarm fires once and (deleteAfterFire) deletes its trigger; a malformed cron is refused
// with the Apache package's message.
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform node --test tests/e2e/alarms.test.js
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const openwhisk = require('openwhisk')
const { AUTH, startPlatform, tempDataDir } = require('./support')

async function eventually (what, fn, ms = 20000) {
  const deadline = Date.now() + ms
  let last
  for (;;) {
    try { return await fn() } catch (e) { last = e }
    if (Date.now() > deadline) throw new Error(`${what}: ${last && last.message}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function scenario (platform, restart) {
  let ow = openwhisk({ apihost: platform.host, api_key: AUTH })
  const FEED = '/whisk.system/alarms/alarm'
  await ow.actions.create({ name: 'tock', action: { exec: { kind: 'nodejs:default', code: 'function main(p) { return { hello: p.hello } }' } } })
  await ow.triggers.create({ name: 'every', trigger: { annotations: [{ key: 'feed', value: FEED }] } })
  await ow.rules.create({ name: 'everyTock', trigger: 'every', action: 'tock' })

  const created = await ow.feeds.create({ name: FEED, trigger: 'every', params: { cron: '* * * * * *', trigger_payload: { hello: 'alarm' } } })
  assert.deepEqual(created.response.result, { status: 'success' })
  const read = await ow.feeds.get({ name: FEED, trigger: 'every' })
  assert.equal(read.response.result.config.cron, '* * * * * *')
  assert.deepEqual(read.response.result.config.payload, { hello: 'alarm' })
  assert.equal(read.response.result.status.active, true)

  // At least three fires, each a trigger record with the payload and a rule activation.
  const fires = await eventually('three alarm fires', async () => {
    const list = await ow.activations.list({ name: 'every', docs: true, limit: 50 })
    assert.ok(list.length >= 3, `${list.length} fires`)
    return list
  })
  for (const f of fires) assert.deepEqual(f.response.result, { hello: 'alarm' })
  // One fire per tick: no more records than the seconds they span, plus one (a fire lands a
  // poll period after its tick; a tick fired twice would double the count).
  const starts = fires.map(f => f.start).sort((a, b) => a - b)
  assert.ok(starts.length <= Math.floor((starts[starts.length - 1] - starts[0]) / 1000) + 2, JSON.stringify(starts))
  const line = JSON.parse(fires[0].logs[0])
  const action = await eventually('rule activation', () => ow.activations.get({ name: line.activationId }))
  assert.deepEqual(action.response.result, { hello: 'alarm' })

  // Killed and restarted on the same store: the alarm goes on.
  const killed = Date.now()
  platform.proc.kill('SIGKILL')
  platform = await restart()
  ow = openwhisk({ apihost: platform.host, api_key: AUTH })
  await eventually('fires after the restart', async () => {
    const list = await ow.activations.list({ name: 'every', docs: true, limit: 50 })
    assert.ok(list.filter(a => a.start > killed).length >= 2, 'two fires after the restart')
  })

  // DELETE stops it.
  const deleted = await ow.feeds.delete({ name: FEED, trigger: 'every' })
  assert.deepEqual(deleted.response.result, { status: 'success' })
  await sleep(600) // a fire already accepted may still be recorded
  const before = (await ow.activations.list({ name: 'every', limit: 200 })).length
  await sleep(2500)
  const after = (await ow.activations.list({ name: 'every', limit: 200 })).length
  assert.equal(after, before, 'no fires after feeds.delete')

  // A malformed cron: the feed invoke fails with the package's message, nothing is stored.
  await assert.rejects(
    ow.feeds.create({ name: FEED, trigger: 'every', params: { cron: 'every now and then' } }),
    e => JSON.stringify(e.error || e.message).includes("cron pattern 'every now and then' is not valid"))
  await assert.rejects(ow.feeds.get({ name: FEED, trigger: 'every' }))

  // once, 2 s from now, deleting its trigger after the fire.
  await ow.triggers.create({ name: 'single', trigger: { annotations: [{ key: 'feed', value: '/whisk.system/alarms/once' }] } })
  await ow.rules.create({ name: 'singleTock', trigger: 'single', action: 'tock' })
  const date = new Date(Date.now() + 2000).toISOString()
  await ow.feeds.create({ name: '/whisk.system/alarms/once', trigger: 'single', params: { date, deleteAfterFire: 'true', trigger_payload: { hello: 'once' } } })
  const once = await eventually('the once fire', async () => {
    const list = await ow.activations.list({ name: 'single', docs: true })
    assert.equal(list.length, 1)
    return list[0]
  })
  assert.deepEqual(once.response.result, { hello: 'once' })
  assert.ok(once.start >= Date.parse(date), 'not before its date')
  await eventually('trigger deleted after the fire', () =>
    assert.rejects(ow.triggers.get({ name: 'single' }), e => e.statusCode === 404))
  await sleep(1200)
  assert.equal((await ow.activations.list({ name: 'single' })).length, 1, 'fired once')
}

test('alarms feed: cron, restart, once, delete (SQLite store)', { timeout: 120000 }, async () => {
  const dataDir = tempDataDir()
  const started = []
  const start = async () => {
    const p = await startPlatform(['--data-dir', dataDir])
    started.push(p.proc)
    return p
  }
  try {
    await scenario(await start(), start)
  } finally {
    for (const proc of started) proc.kill('SIGTERM')
  }
})
