// End-to-end: triggers, rules and feeds with the `openwhisk` npm client against
// `faas-platform standalone` (in-memory store): a trigger with two rules runs two actions with
// the trigger's parameters under the fire's payload, the trigger's record logs both; a
// disabled rule runs nothing, enabled again it does; a feed action gets CREATE and DELETE from
// `feeds.create`/`feeds.delete` with the trigger's name and the caller's key.
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform node --test tests/e2e/triggers.test.js
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const openwhisk = require('openwhisk')
const { AUTH, startPlatform } = require('./support')

async function eventually (what, fn, ms = 30000) {
  const deadline = Date.now() + ms
  let last
  for (;;) {
    try { return await fn() } catch (e) { last = e }
    if (Date.now() > deadline) throw new Error(`${what}: ${last && last.message}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function scenario (host) {
  const ow = openwhisk({ apihost: host, api_key: AUTH })
  const js = code => ({ exec: { kind: 'nodejs:default', code } })
  await ow.actions.create({ name: 'left', action: js('function main(p) { return { side: "left", who: p.who, from: p.from } }') })
  await ow.actions.create({ name: 'right', action: js('function main(p) { return { side: "right", who: p.who, from: p.from } }') })

  const t = await ow.triggers.create({ name: 'tick', trigger: { parameters: [{ key: 'from', value: 'trigger' }, { key: 'who', value: 'trigger' }] } })
  assert.equal(t.name, 'tick')
  // No rule: the fire is answered without an activation.
  const none = await ow.triggers.invoke({ name: 'tick' })
  assert.ok(!none || !none.activationId, JSON.stringify(none))

  const r1 = await ow.rules.create({ name: 'toLeft', trigger: 'tick', action: 'left' })
  assert.equal(r1.status, 'active')
  await ow.rules.create({ name: 'toRight', trigger: '/_/tick', action: '/_/right' })
  const got = await ow.triggers.get({ name: 'tick' })
  assert.deepEqual(Object.keys(got.rules).sort(), ['guest/toLeft', 'guest/toRight'])
  assert.deepEqual((await ow.rules.list()).map(r => r.name).sort(), ['toLeft', 'toRight'])

  const fired = await ow.triggers.invoke({ name: 'tick', params: { who: 'payload' } })
  assert.match(fired.activationId, /^[0-9a-f]{32}$/)
  const record = await eventually('trigger record', () => ow.activations.get({ name: fired.activationId }))
  assert.equal(record.name, 'tick')
  assert.deepEqual(record.response.result, { who: 'payload' })
  const lines = record.logs.map(l => JSON.parse(l))
  assert.deepEqual(lines.map(l => l.rule).sort(), ['guest/toLeft', 'guest/toRight'])
  assert.ok(lines.every(l => l.success === true && l.statusCode === 0), JSON.stringify(lines))
  const results = await Promise.all(lines.map(l => eventually('rule activation', () => ow.activations.get({ name: l.activationId }))))
  assert.deepEqual(results.map(a => a.response.result).sort((a, b) => a.side.localeCompare(b.side)), [
    { side: 'left', who: 'payload', from: 'trigger' },
    { side: 'right', who: 'payload', from: 'trigger' }
  ])

  // Disable one rule: the fire runs only the other, and logs the disabled one.
  await ow.rules.disable({ name: 'toLeft' })
  assert.equal((await ow.rules.get({ name: 'toLeft' })).status, 'inactive')
  const again = await ow.triggers.invoke({ name: 'tick' })
  const rec2 = await eventually('trigger record', () => ow.activations.get({ name: again.activationId }))
  const byRule = Object.fromEntries(rec2.logs.map(l => JSON.parse(l)).map(l => [l.rule, l]))
  assert.equal(byRule['guest/toLeft'].success, false)
  assert.equal(byRule['guest/toLeft'].error, "Rule 'guest/toLeft' is inactive, action 'guest/left' was not activated.")
  assert.equal(byRule['guest/toRight'].success, true)
  await ow.rules.enable({ name: 'toLeft' })
  assert.equal((await ow.rules.get({ name: 'toLeft' })).status, 'active')

  // Errors in OpenWhisk's shape.
  await assert.rejects(ow.rules.create({ name: 'bad', trigger: 'tick', action: 'nope' }), e => e.statusCode === 400 && /action \/guest\/nope does not exist/.test(e.message))
  await assert.rejects(ow.triggers.invoke({ name: 'nope' }), e => e.statusCode === 404)

  await ow.rules.delete({ name: 'toLeft' })
  await ow.rules.delete({ name: 'toRight' })
  await ow.triggers.delete({ name: 'tick' })
  assert.deepEqual(await ow.triggers.list(), [])

  // A feed: CREATE and DELETE from the client, with the trigger's name and the key.
  await ow.actions.create({
    name: 'myFeed',
    action: js('function main(p) { return { event: p.lifecycleEvent, trigger: p.triggerName, key: p.authKey, cron: p.cron } }'),
    annotations: { feed: true }
  })
  await ow.triggers.create({ name: 'fed', trigger: { annotations: [{ key: 'feed', value: '/_/myFeed' }] } })
  const created = await ow.feeds.create({ name: 'myFeed', trigger: 'fed', params: { cron: '*/2 * * * * *' } })
  assert.deepEqual(created.response.result, { event: 'CREATE', trigger: '/_/fed', key: AUTH, cron: '*/2 * * * * *' })
  const deleted = await ow.feeds.delete({ name: 'myFeed', trigger: 'fed' })
  assert.equal(deleted.response.result.event, 'DELETE')
  await ow.triggers.delete({ name: 'fed' })
}

test('triggers, rules and feeds (in-memory store)', { timeout: 120000 }, async () => {
  const { proc, host } = await startPlatform()
  try {
    await scenario(host)
  } finally {
    proc.kill('SIGTERM')
  }
})
