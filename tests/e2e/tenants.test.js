// Tenants and operators, end to end: two controllers and an invoker over a Kafka-API broker and
// a CouchDB-API store, users made with `faas-platform admin` (through a controller's admin API
// and straight on the store), each seeing only its own namespace through the `openwhisk` npm
// client; blocking a user is refused by every controller within a second; a namespace limit
// changed by the operator is enforced (429); a deleted user is gone everywhere.
// Needs FAAS_TEST_KAFKA_BROKERS and FAAS_TEST_COUCHDB_URL (scripts/test.sh sets them); skips
// without them unless FAAS_REQUIRE_SERVICES=1 (then it fails).
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const crypto = require('node:crypto')
const openwhisk = require('openwhisk')

const { BIN, startNode, apiAs: api, eventually } = require('./support')
const KAFKA = (process.env.FAAS_TEST_KAFKA_BROKERS || '').trim()
const COUCH = (process.env.FAAS_TEST_COUCHDB_URL || '').trim()
const REQUIRED = ['1', 'true'].includes(process.env.FAAS_REQUIRE_SERVICES || '')
const skip = (!KAFKA || !COUCH) && !REQUIRED ? 'FAAS_TEST_KAFKA_BROKERS / FAAS_TEST_COUCHDB_URL not set' : false

const run = crypto.randomBytes(4).toString('hex')
const PREFIX = `e2e_tenants_${run}_`
const STORE = `${COUCH.replace(/\/?$/, '/')}?prefix=${PREFIX}`
const BUS = `kafka://${KAFKA}?prefix=e2ten${run}.`
const TOKEN = crypto.randomBytes(32).toString('base64url')
// Revocation must reach every controller within this (the requirement).
const DEADLINE_MS = 1000
const procs = new Set()

async function node (mode, args) {
  const { proc, host } = await startNode(mode, [
    '--store', STORE, '--bus', BUS, '--executor', 'process:', '--admin-auth', TOKEN, ...args
  ])
  procs.add(proc)
  proc.on('exit', () => procs.delete(proc))
  return host
}

// `faas-platform admin <connection…> <args…>` → { code, stdout, stderr }.
function admin (connection, args) {
  return new Promise(resolve => {
    const env = { ...process.env, RUST_LOG: 'warn' }
    for (const k of ['FAAS_ADMIN_URL', 'FAAS_ADMIN_AUTH', 'FAAS_STORE', 'FAAS_BUS', 'FAAS_CONFIG']) delete env[k]
    execFile(BIN, ['admin', ...connection, ...args], { env, timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout: stdout.trim(), stderr: stderr.trim() })
    })
  })
}

function ok (r) {
  assert.equal(r.code, 0, `admin failed: ${r.stderr}`)
  return r.stdout
}

// Milliseconds from now until `check(host)` holds on `host` (polled every 10 ms, at most 5 s;
// Infinity if never).
async function delayUntil (host, check) {
  const t0 = Date.now()
  while (Date.now() - t0 < 5000) {
    if (await check(host)) return Date.now() - t0
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  return Infinity
}

test('tenants and operators on two controllers over Kafka and CouchDB', { skip, timeout: 300000 }, async (t) => {
  assert.ok(KAFKA && COUCH, 'FAAS_TEST_KAFKA_BROKERS and FAAS_TEST_COUCHDB_URL must be set when FAAS_REQUIRE_SERVICES=1')
  t.after(async () => {
    for (const p of procs) p.kill('SIGKILL')
    // Drop this run's databases.
    const base = COUCH.replace(/^couchdb:/, 'http:').replace(/\/?$/, '/')
    for (const db of ['subjects', 'whisks', 'activations']) {
      try { await fetch(`${base}${PREFIX}${db}`, { method: 'DELETE' }) } catch {}
    }
  })

  await node('invoker', ['--id', '0', '--user-memory-mb', '1024'])
  const ctl = [
    await node('controller', ['--id', '0', '--cluster-size', '2', '--listen', '127.0.0.1:0']),
    await node('controller', ['--id', '1', '--cluster-size', '2', '--listen', '127.0.0.1:0'])
  ]
  for (const host of ctl) {
    await eventually(`invoker up at ${host}`, async () => {
      const r = await fetch(`${host}/invokers`)
      assert.deepEqual(await r.json(), { invoker0: 'up' })
    }, 30000)
  }
  const viaApi = (i) => ['--url', ctl[i], '--admin-auth', TOKEN]
  const direct = ['--store', STORE, '--bus', BUS]

  // Two users: one through controller 0's admin API, one straight on the store.
  const alice = ok(await admin(viaApi(0), ['user', 'create', 'alice-user', '--namespace', 'alice']))
  const bob = ok(await admin(direct, ['user', 'create', 'bob-user', '--namespace', 'bob']))
  assert.match(alice, /^[0-9a-f-]{36}:[A-Za-z0-9]{64}$/)
  assert.match(bob, /^[0-9a-f-]{36}:[A-Za-z0-9]{64}$/)
  const dup = await admin(viaApi(1), ['user', 'create', 'bob-user', '--namespace', 'bob'])
  assert.equal(dup.code, 1)
  assert.match(dup.stderr, /Namespace already exists/)
  assert.equal(ok(await admin(viaApi(1), ['user', 'list', 'bob'])), `${bob}\tbob-user`)

  // Each sees only its own namespace and entities, on either controller.
  const owA = openwhisk({ apihost: ctl[0], api_key: alice })
  const owB = openwhisk({ apihost: ctl[1], api_key: bob })
  assert.deepEqual(await owA.namespaces.list(), ['alice'])
  assert.deepEqual(await owB.namespaces.list(), ['bob'])
  for (const [ow, who] of [[owA, 'alice'], [owB, 'bob']]) {
    await ow.actions.create({ name: `hello-${who}`, kind: 'nodejs:default', action: `function main() { return { me: "${who}" } }` })
  }
  assert.deepEqual((await owA.actions.list()).map(a => a.name), ['hello-alice'])
  assert.deepEqual((await owB.actions.list()).map(a => a.name), ['hello-bob'])
  assert.deepEqual(await owA.actions.invoke({ name: 'hello-alice', blocking: true, result: true }), { me: 'alice' })
  assert.deepEqual(await owB.actions.invoke({ name: 'hello-bob', blocking: true, result: true }), { me: 'bob' })
  // Crossing over is refused, as for any foreign namespace.
  await assert.rejects(owA.actions.get({ name: 'hello-bob', namespace: 'bob' }), e => e.statusCode === 403)
  await assert.rejects(owB.actions.invoke({ name: '/alice/hello-alice', blocking: true }), e => e.statusCode === 403)
  assert.equal((await api(ctl[1], alice, 'GET', '/namespaces/bob/actions')).status, 403)

  // Block bob: both controllers have his identity cached; both refuse him within a second.
  for (const host of ctl) assert.equal((await api(host, bob, 'GET', '/namespaces')).status, 200)
  assert.equal(ok(await admin(viaApi(0), ['user', 'block', 'bob-user'])), "'bob-user' blocked successfully")
  const refused = (key) => async host => (await api(host, key, 'GET', '/namespaces')).status === 401
  const blockDelays = await Promise.all(ctl.map(host => delayUntil(host, refused(bob))))
  t.diagnostic(`block reached the controllers after ${blockDelays.join(' ms, ')} ms`)
  for (const d of blockDelays) assert.ok(d < DEADLINE_MS, `blocked user still accepted after ${d} ms`)
  await assert.rejects(owB.actions.invoke({ name: 'hello-bob', blocking: true }), e => e.statusCode === 401)
  assert.deepEqual(await owA.namespaces.list(), ['alice'], 'the other tenant is untouched')

  // Unblock him straight on the store (announced on the bus): back within a second.
  assert.equal(ok(await admin(direct, ['user', 'unblock', 'bob-user'])), "'bob-user' unblocked successfully")
  const accepted = (key) => async host => (await api(host, key, 'GET', '/namespaces')).status === 200
  for (const d of await Promise.all(ctl.map(host => delayUntil(host, accepted(bob))))) {
    assert.ok(d < DEADLINE_MS, `unblocked user still refused after ${d} ms`)
  }

  // Limits: alice invokes freely, then the operator allows 2 per minute (each of the two
  // controllers enforces its share, ceil(2 × 1.2) / 2 = 1), changed straight on the store.
  for (let i = 0; i < 3; i++) {
    assert.equal((await api(ctl[1], alice, 'POST', '/namespaces/_/actions/hello-alice?blocking=true', {})).status, 200)
  }
  assert.equal(ok(await admin(direct, ['limits', 'set', 'alice', '--invocationsPerMinute', '2'])), "Limits successfully set for 'alice'")
  const limited = async host => (await api(host, alice, 'GET', '/namespaces/_/limits')).json.invocationsPerMinute === 2
  for (const d of await Promise.all(ctl.map(host => delayUntil(host, limited)))) {
    assert.ok(d < DEADLINE_MS, `new limits seen after ${d} ms`)
  }
  const statuses = []
  for (let i = 0; i < 3; i++) {
    const r = await api(ctl[1], alice, 'POST', '/namespaces/_/actions/hello-alice?blocking=true', {})
    statuses.push(r.status)
    if (r.status === 429) assert.match(r.json.error, /^Too many requests in the last minute \(count: \d+, allowed: 1\)\.$/)
  }
  assert.ok(statuses.includes(429), `429 at the new limit: ${statuses}`)
  await assert.rejects(
    openwhisk({ apihost: ctl[1], api_key: alice }).actions.invoke({ name: 'hello-alice' }),
    e => e.statusCode === 429
  )
  assert.match(ok(await admin(viaApi(1), ['limits', 'get', 'alice'])), /^invocationsPerMinute = 2$/m)
  assert.equal((await api(ctl[0], bob, 'POST', '/namespaces/_/actions/hello-bob?blocking=true', {})).status, 200, 'bob keeps the system limits')
  const bad = await admin(viaApi(0), ['limits', 'set', 'alice', '--concurrentInvocations', '-1'])
  assert.equal(bad.code, 2)

  // Delete bob: gone on both controllers within a second, and from the subjects.
  for (const host of ctl) assert.equal((await api(host, bob, 'GET', '/namespaces')).status, 200)
  assert.equal(ok(await admin(viaApi(1), ['user', 'delete', 'bob-user'])), 'Subject deleted')
  for (const d of await Promise.all(ctl.map(host => delayUntil(host, refused(bob))))) {
    assert.ok(d < DEADLINE_MS, `deleted user still accepted after ${d} ms`)
  }
  const gone = await admin(direct, ['user', 'get', 'bob-user'])
  assert.equal(gone.code, 1)
  assert.match(gone.stderr, /Subject not found/)
  assert.deepEqual(ok(await admin(viaApi(0), ['namespace', 'list'])).split('\n'), ['alice', 'guest', 'whisk.system'])

  // The operator credential is not a tenant key, and a tenant key opens no admin route.
  const r = await fetch(`${ctl[0]}/admin/v1/namespaces`, { headers: { authorization: 'Basic ' + Buffer.from(alice).toString('base64') } })
  assert.equal(r.status, 401)
  assert.equal((await api(ctl[0], TOKEN, 'GET', '/namespaces')).status, 401)
})
