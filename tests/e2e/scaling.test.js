// Invokers joining and leaving under load: a controller and one invoker over Kafka and
// CouchDB (process executor) take a bounded stream of non-blocking invokes while a second
// invoker joins, the first leaves (SIGTERM: it finishes what it runs and leaves the rest
// uncommitted) and comes back. Every accepted activation ends with exactly one record, and
// no invoke is refused while an invoker is up.
// Needs FAAS_TEST_KAFKA_BROKERS and FAAS_TEST_COUCHDB_URL (scripts/test.sh sets them); skips
// without them unless FAAS_REQUIRE_SERVICES=1 (then it fails).
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')

const fs = require('node:fs')
const path = require('node:path')
const { stop, tempDataDir, cluster, api, eventually, invokers } = require('./support')
const { skip, node, stopAll, KAFKA, COUCH } = cluster({ storePrefix: 'e2e_scale_', busPrefix: 'e2es', nodeArgs: ['--executor', 'process:'] })

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

test('invokers join and leave under load: nothing lost, nothing twice', { skip, timeout: 300000 }, async (t) => {
  assert.ok(KAFKA && COUCH, 'FAAS_TEST_KAFKA_BROKERS and FAAS_TEST_COUCHDB_URL must be set when FAAS_REQUIRE_SERVICES=1')
  t.after(stopAll)

  // More than the guest's default 60 invokes a minute.
  const config = path.join(tempDataDir(), 'controller.toml')
  fs.writeFileSync(config, '[limits]\ninvocations_per_minute = 100000\nconcurrent_invocations = 1000\n')
  const ctl = await node('controller', ['--id', '0', '--listen', '127.0.0.1:0', '--config', config])
  const host = ctl.host
  let inv0 = await node('invoker', ['--id', '0', '--user-memory-mb', '1024'])
  await eventually('invoker0 up', async () => {
    assert.deepEqual(await invokers(host), { invoker0: 'up' })
  }, 30000)
  const put = await api(host, 'PUT', '/namespaces/_/actions/scale', {
    exec: { kind: 'nodejs:default', code: 'function main(p) { return new Promise(r => setTimeout(() => r({ n: p.n }), 20)) }' }
  })
  assert.equal(put.status, 200, put.text)

  // Bounded load: non-blocking invokes from 4 clients, paced, from before the second invoker
  // joins until after the first is back (at most MAX).
  const MAX = 1000
  const accepted = new Map()
  const refused = []
  const phase = { name: 'one invoker' }
  const perPhase = {}
  let next = 0
  let done = false
  const load = Promise.all(Array.from({ length: 4 }, async () => {
    while (!done && next < MAX) {
      const n = next++
      const during = phase.name
      const r = await api(host, 'POST', '/namespaces/_/actions/scale', { n })
      if (r.status === 202) {
        accepted.set(r.json.activationId, n)
        perPhase[during] = (perPhase[during] || 0) + 1
      } else refused.push(`${n}: ${r.status} ${r.text}`)
      await sleep(150)
    }
  }))

  // A second invoker joins under load...
  await sleep(500)
  phase.name = 'invoker1 joining'
  const inv1 = await node('invoker', ['--id', '1', '--user-memory-mb', '1024'])
  await eventually('invoker1 up', async () => {
    assert.equal((await invokers(host)).invoker1, 'up')
  }, 30000)
  phase.name = 'two invokers'
  await sleep(500)
  // ...the first leaves (what it has not run stays on its topic)...
  phase.name = 'invoker0 leaving'
  await stop(inv0.p)
  await eventually('invoker0 down', async () => {
    assert.equal((await invokers(host)).invoker0, 'down')
  }, 30000)
  phase.name = 'invoker0 down'
  await sleep(1000)
  // ...and comes back, finishing what it left.
  phase.name = 'invoker0 rejoining'
  inv0 = await node('invoker', ['--id', '0', '--user-memory-mb', '1024'])
  await eventually('invoker0 up again', async () => {
    assert.equal((await invokers(host)).invoker0, 'up')
  }, 30000)
  phase.name = 'two invokers again'
  await sleep(500)
  done = true
  await load

  assert.deepEqual(refused, [], 'an invoker was up all along: nothing refused')
  assert.ok(next < MAX, `the load ran through every change (${next} invokes)`)
  for (const p of ['one invoker', 'two invokers', 'invoker0 down', 'two invokers again']) {
    assert.ok(perPhase[p] > 0, `invokes accepted during "${p}": ${JSON.stringify(perPhase)}`)
  }
  const total = accepted.size
  t.diagnostic(`accepted per phase: ${JSON.stringify(perPhase)}`)
  const records = async () => {
    const out = []
    for (let skip = 0; skip < total + 200; skip += 200) {
      const r = await api(host, 'GET', `/namespaces/_/activations?name=scale&limit=200&skip=${skip}&docs=true`)
      assert.equal(r.status, 200, r.text)
      out.push(...r.json)
      if (r.json.length < 200) break
    }
    return out
  }
  await eventually('every accepted activation recorded', async () => {
    const ids = new Set((await records()).map(a => a.activationId))
    const missing = [...accepted.keys()].filter(id => !ids.has(id))
    assert.deepEqual(missing, [], `${missing.length} of ${total} not recorded yet`)
  }, 120000)
  const listed = await records()
  assert.equal(listed.length, total, 'one record per accepted activation, no more')
  const byId = new Map()
  for (const a of listed) byId.set(a.activationId, (byId.get(a.activationId) || []).concat([a]))
  for (const [id, n] of accepted) {
    const recs = byId.get(id) || []
    assert.equal(recs.length, 1, `activation ${id} recorded exactly once`)
    assert.equal(recs[0].response.status, 'success', JSON.stringify(recs[0]))
    assert.deepEqual(recs[0].response.result, { n })
  }
  // Both invokers did work.
  assert.ok(inv1.p.exitCode === null && inv0.p.exitCode === null)
})
