// Trigger fires in the distributed platform: two controllers and an invoker as separate
// processes over a Kafka-API broker and a CouchDB-API store. Rules created at once through
// both controllers on one trigger are all linked in it. Fires accepted by either
// controller run their rule's action exactly once; a controller SIGKILLed right after
// answering a fire's 202 does not lose it (the fire is on the bus before the 202; another
// member of the `triggerFires` group, or the restarted controller, finishes it).
// An alarm (`whisk.system/alarms/alarm`, 1 s cron) with both controllers running fires each
// tick once (one trigger record per second), from the controller holding the alarms lease
// (read from CouchDB); that controller SIGKILLed, the other takes the lease over once it
// expires and the alarm goes on firing.
// Needs FAAS_TEST_KAFKA_BROKERS and FAAS_TEST_COUCHDB_URL (scripts/test.sh sets them); skips
// without them unless FAAS_REQUIRE_SERVICES=1 (then it fails).
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')

const { AUTH, cluster, api, eventually } = require('./support')
const { skip, node, stopAll, KAFKA, COUCH, run } = cluster({ storePrefix: 'e2e_trig_', busPrefix: 'e2etrig' })

// The action activation a fire's trigger record names, once the action's record is stored.
async function ruleActivation (host, fireId) {
  const record = await eventually(`trigger record ${fireId}`, async () => {
    const r = await api(host, 'GET', `/namespaces/_/activations/${fireId}`)
    assert.equal(r.status, 200, r.text)
    return r.json
  }, 120000)
  assert.equal(record.logs.length, 1, JSON.stringify(record))
  const line = JSON.parse(record.logs[0])
  assert.equal(line.success, true, record.logs[0])
  return eventually(`action record ${line.activationId}`, async () => {
    const r = await api(host, 'GET', `/namespaces/_/activations/${line.activationId}`)
    assert.equal(r.status, 200, r.text)
    assert.equal(r.json.response.status, 'success', r.text)
    return r.json
  }, 120000)
}

test('fires survive a controller killed after the 202', { skip, timeout: 600000 }, async (t) => {
  assert.ok(KAFKA && COUCH, 'FAAS_TEST_KAFKA_BROKERS and FAAS_TEST_COUCHDB_URL must be set when FAAS_REQUIRE_SERVICES=1')
  t.after(stopAll)

  await node('invoker', ['--id', '0', '--user-memory-mb', '1024'])
  const ctl0 = await node('controller', ['--id', '0', '--cluster-size', '2', '--listen', '127.0.0.1:0'])
  const ctl1 = await node('controller', ['--id', '1', '--cluster-size', '2', '--listen', '127.0.0.1:0'])
  for (const c of [ctl0, ctl1]) {
    await eventually('invoker up', async () => {
      const r = await fetch(`${c.host}/invokers`)
      assert.deepEqual(await r.json(), { invoker0: 'up' })
    }, 30000)
  }

  let r = await api(ctl0.host, 'PUT', '/namespaces/_/actions/echoFire', { exec: { kind: 'nodejs:default', code: 'function main(p) { return { n: p.n } }' } })
  assert.equal(r.status, 200, r.text)
  r = await api(ctl0.host, 'PUT', '/namespaces/_/triggers/dist', {})
  assert.equal(r.status, 200, r.text)
  r = await api(ctl0.host, 'PUT', '/namespaces/_/rules/distRule', { trigger: '/_/dist', action: '/_/echoFire' })
  assert.equal(r.status, 200, r.text)
  assert.equal(r.json.status, 'active')
  // Both controllers see the rule (the trigger's rules map) before firing.
  await eventually('rule visible on controller 1', async () => {
    const g = await api(ctl1.host, 'GET', '/namespaces/_/rules/distRule')
    assert.equal(g.json.status, 'active', g.text)
  }, 30000)

  // Rules created at once through both controllers on one trigger (CouchDB revisions, each
  // controller behind its own cache): every link is kept.
  r = await api(ctl0.host, 'PUT', '/namespaces/_/triggers/many', {})
  assert.equal(r.status, 200, r.text)
  const made = await Promise.all(Array.from({ length: 8 }, (_, i) =>
    api(i % 2 ? ctl1.host : ctl0.host, 'PUT', `/namespaces/_/rules/many${i}`, { trigger: '/_/many', action: '/_/echoFire' })))
  for (const m of made) assert.equal(m.status, 200, m.text)
  const many = await api(ctl1.host, 'GET', '/namespaces/_/triggers/many')
  assert.deepEqual(Object.keys(many.json.rules).sort(), Array.from({ length: 8 }, (_, i) => `guest/many${i}`).sort())

  // Fires accepted by either controller each run the action once.
  const fires = []
  for (let i = 0; i < 6; i++) {
    const host = i % 2 ? ctl1.host : ctl0.host
    const f = await api(host, 'POST', '/namespaces/_/triggers/dist', { n: i })
    assert.equal(f.status, 202, f.text)
    fires.push([i, f.json.activationId])
  }
  for (const [i, id] of fires) {
    const a = await ruleActivation(ctl1.host, id)
    assert.deepEqual(a.response.result, { n: i })
  }

  // A fire answered by controller 0, which is killed at once.
  const last = await api(ctl0.host, 'POST', '/namespaces/_/triggers/dist', { n: 99 })
  ctl0.p.kill('SIGKILL')
  assert.equal(last.status, 202, last.text)
  // Controller 0 comes back after the group's session timeout (see distributed.test.js: the
  // broker hands partitions over once the dead member is written off); whichever member holds
  // the partition then finishes the fire.
  await new Promise(resolve => setTimeout(resolve, 8000))
  const ctl0b = await node('controller', ['--id', '0', '--cluster-size', '2', '--listen', '127.0.0.1:0'])
  const a = await ruleActivation(ctl1.host, last.json.activationId)
  assert.deepEqual(a.response.result, { n: 99 })

  // Exactly one action activation per fire.
  const listed = await api(ctl1.host, 'GET', '/namespaces/_/activations?name=echoFire&limit=200&docs=true')
  assert.equal(listed.status, 200, listed.text)
  const ns = listed.json.map(x => x.response.result.n).sort((x, y) => x - y)
  assert.deepEqual(ns, [0, 1, 2, 3, 4, 5, 99])

  await alarms({ controller0: ctl0b, controller1: ctl1 })
})

// `couchdb://[user:pass@]host:port/` → an http URL and headers for raw reads.
function httpOf (storeUrl) {
  const u = new URL(storeUrl.replace(/^couchdb:/, 'http:'))
  const h = {}
  if (u.username) h.authorization = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')
  return { base: `http://${u.host}/`, headers: h }
}

// The alarms leader lease as stored (`alarms_lease/leader` in `<prefix>documents`).
async function leaseOwner () {
  const { base, headers: h } = httpOf(COUCH)
  const res = await fetch(`${base}e2e_trig_${run}_documents/${encodeURIComponent('alarms_lease/leader')}`, { headers: h })
  assert.equal(res.status, 200, await res.clone().text())
  return (await res.json()).doc.owner
}

// The trigger records of `alarmT` (start times, ms), read through `host`.
async function alarmFires (host) {
  const r = await api(host, 'GET', '/namespaces/_/activations?name=alarmT&limit=200&docs=true')
  assert.equal(r.status, 200, r.text)
  return r.json.map(a => a.start).sort((x, y) => x - y)
}

// One trigger record per tick of a 1 s cron: no more records than seconds they span, plus one
// (a fire lands up to a poll period and a bus hop after its tick, so seconds may repeat, but a
// tick fired twice would double the count).
function oncePerTick (starts) {
  const span = starts[starts.length - 1] - starts[0]
  assert.ok(starts.length <= Math.floor(span / 1000) + 2, `more fires than ticks: ${JSON.stringify(starts)}`)
}

async function alarms (ctl) {
  const host = ctl.controller1.host
  let r = await api(host, 'PUT', '/namespaces/_/actions/alarmEcho', { exec: { kind: 'nodejs:default', code: 'function main(p) { return { n: p.n } }' } })
  assert.equal(r.status, 200, r.text)
  r = await api(host, 'PUT', '/namespaces/_/triggers/alarmT', {})
  assert.equal(r.status, 200, r.text)
  r = await api(host, 'PUT', '/namespaces/_/rules/alarmRule', { trigger: '/_/alarmT', action: '/_/alarmEcho' })
  assert.equal(r.status, 200, r.text)
  const feed = event => api(host, 'POST', '/namespaces/whisk.system/actions/alarms/alarm?blocking=true&result=true',
    { lifecycleEvent: event, triggerName: '/_/alarmT', authKey: AUTH, cron: '* * * * * *', trigger_payload: { n: 7 } })
  r = await feed('CREATE')
  assert.equal(r.status, 200, r.text)
  assert.deepEqual(r.json, { status: 'success' })

  await eventually('five alarm fires', async () => assert.ok((await alarmFires(host)).length >= 5), 30000)
  oncePerTick(await alarmFires(host))
  const owner = await leaseOwner()
  assert.ok(owner in ctl, owner)

  // The leader dies: the other controller takes the lease over (10 s) and fires on.
  const survivor = owner === 'controller0' ? 'controller1' : 'controller0'
  const killed = Date.now()
  ctl[owner].p.kill('SIGKILL')
  const sHost = ctl[survivor].host
  // The dead controller comes back under its id once the lease has expired and the survivor
  // holds it: tansu 0.6 hands the dead member's triggerFires partition over only when a member
  // joins (see distributed.test.js), and the survivor's fires may be in that partition.
  await new Promise(resolve => setTimeout(resolve, 12000))
  await node('controller', ['--id', owner.replace('controller', ''), '--cluster-size', '2', '--listen', '127.0.0.1:0'])
  await eventually('fires after the fail-over', async () => {
    const later = (await alarmFires(sHost)).filter(s => s > killed + 1000)
    assert.ok(later.length >= 3, `${later.length} fires after the kill`)
  }, 60000) // the lease (10 s), then the broker hands the dead member's partition over
  assert.equal(await leaseOwner(), survivor)
  const all = await alarmFires(sHost)
  oncePerTick(all)
  const one = await api(sHost, 'GET', '/namespaces/_/activations?name=alarmEcho&limit=1&docs=true')
  assert.deepEqual(one.json[0].response.result, { n: 7 })

  const del = await api(sHost, 'POST', '/namespaces/whisk.system/actions/alarms/alarm?blocking=true&result=true',
    { lifecycleEvent: 'DELETE', triggerName: '/_/alarmT', authKey: AUTH })
  assert.equal(del.status, 200, del.text)
}
