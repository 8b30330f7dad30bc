// End-to-end: `faas-platform standalone --store couchdb://…` against the CouchDB-API server of
// `scripts/services/couchdb.sh` (FAAS_TEST_COUCHDB_URL). Creates actions, invokes them, kills
// the platform (SIGKILL, as a crash would), starts it again on the same databases, and checks
// that every action and every activation record is intact and that invoking still works.
// Skips without FAAS_TEST_COUCHDB_URL, unless FAAS_REQUIRE_SERVICES=1 (then it fails).
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform FAAS_TEST_COUCHDB_URL=couchdb://127.0.0.1:5984/ \
//        node --test tests/e2e/couchdb.test.js
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const openwhisk = require('openwhisk')
const { AUTH, startPlatform, stopPlatform } = require('./support')

const COUCH = (process.env.FAAS_TEST_COUCHDB_URL || '').trim()
const REQUIRED = ['1', 'true'].includes(process.env.FAAS_REQUIRE_SERVICES || '')

async function eventually (fn, ms = 15000) {
  const deadline = Date.now() + ms
  for (;;) {
    try { return await fn() } catch (e) {
      if (Date.now() > deadline) throw e
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
}

// `couchdb://[user:pass@]host:port/` → an http URL and an Authorization header for raw calls.
function httpOf (storeUrl) {
  const u = new URL(storeUrl.replace(/^couchdb:/, 'http:'))
  const headers = {}
  if (u.username) {
    const creds = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`
    headers.authorization = 'Basic ' + Buffer.from(creds).toString('base64')
  }
  u.username = ''
  u.password = ''
  u.search = ''
  u.pathname = '/'
  return { base: u.toString(), headers }
}

function withPrefix (storeUrl, prefix) {
  const u = new URL(storeUrl.replace(/^couchdb:/, 'http:'))
  u.searchParams.set('prefix', prefix)
  return u.toString().replace(/^http:/, 'couchdb:')
}

const skip = !COUCH && !REQUIRED ? 'FAAS_TEST_COUCHDB_URL is not set (scripts/services/couchdb.sh start)' : false

test('couchdb store: actions and activation records survive a platform restart', { skip, timeout: 180000 }, async () => {
  assert.ok(COUCH, 'FAAS_TEST_COUCHDB_URL must be set when FAAS_REQUIRE_SERVICES=1')
  const prefix = `faas_e2e_${process.pid}_${Date.now().toString(36)}_`
  const store = withPrefix(COUCH, prefix)
  const raw = httpOf(COUCH)
  const uniq = (p) => `${p}-${Math.floor(Math.random() * 1e9).toString(36)}`

  let running = await startPlatform(['--store', store])
  try {
    let ow = openwhisk({ apihost: running.host, api_key: AUTH })
    const actions = [
      { name: uniq('node'), kind: 'nodejs:default', action: 'function main(p) { console.log("n=" + p.n); return { twice: p.n * 2, from: p.from } }', params: { from: 'action' } },
      { name: uniq('py'), kind: 'python:default', action: 'def main(args):\n    print("py", args.get("n"))\n    return {"plus": args.get("n", 0) + 1}\n' },
      { name: uniq('params'), kind: 'nodejs:default', action: 'function main(p) { return { from: p.from, n: p.n } }', params: { from: 'defaults' }, annotations: { note: 'kept' } }
    ]
    for (const a of actions) await ow.actions.create(a)
    const before = {}
    for (const a of actions) before[a.name] = await ow.actions.get({ name: a.name })

    // Blocking and non-blocking invocations of each; wait until each record is stored.
    const ids = []
    for (const [i, a] of actions.entries()) {
      const r = await ow.actions.invoke({ name: a.name, blocking: true, params: { n: i + 1 } })
      assert.equal(r.response.success, true, JSON.stringify(r))
      ids.push(r.activationId)
      const nb = await ow.actions.invoke({ name: a.name, params: { n: 10 + i } })
      ids.push(nb.activationId)
    }
    const records = {}
    for (const id of ids) records[id] = await eventually(() => ow.activations.get({ name: id }))
    assert.deepEqual(records[ids[0]].response.result, { twice: 2, from: 'action' })
    assert.deepEqual(records[ids[4]].response.result, { from: 'defaults', n: 3 })
    assert.ok(records[ids[0]].logs.some(l => l.endsWith('stdout: n=1')), JSON.stringify(records[ids[0]].logs))

    // A crash, then a new process on the same databases.
    await stopPlatform(running.proc, 'SIGKILL')
    running = await startPlatform(['--store', store])
    ow = openwhisk({ apihost: running.host, api_key: AUTH })

    for (const a of actions) {
      const got = await ow.actions.get({ name: a.name })
      assert.deepEqual(got, before[a.name], `action ${a.name} changed across the restart`)
    }
    const listed = (await ow.actions.list({ limit: 200 })).map(a => a.name)
    for (const a of actions) assert.ok(listed.includes(a.name), `${a.name} listed: ${listed}`)
    for (const id of ids) {
      const rec = await ow.activations.get({ name: id })
      assert.deepEqual(rec, records[id], `activation ${id} changed across the restart`)
    }
    const listedIds = (await ow.activations.list({ limit: 200 })).map(a => a.activationId)
    for (const id of ids) assert.ok(listedIds.includes(id), `activation ${id} listed`)
    const count = await ow.activations.list({ count: true })
    assert.equal(count.activations, ids.length)
    const byName = await ow.activations.list({ name: actions[1].name, limit: 200 })
    assert.deepEqual(byName.map(a => a.activationId).sort(), [ids[2], ids[3]].sort())

    // The restarted platform keeps working on the same data.
    const again = await ow.actions.invoke({ name: actions[0].name, blocking: true, result: true, params: { n: 21 } })
    assert.deepEqual(again, { twice: 42, from: 'action' })
  } finally {
    await stopPlatform(running.proc, 'SIGTERM')
    for (const db of ['subjects', 'whisks', 'activations']) {
      await fetch(`${raw.base}${prefix}${db}`, { method: 'DELETE', headers: raw.headers }).catch(() => {})
    }
  }
})
