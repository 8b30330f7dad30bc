// End-to-end: `faas-platform standalone` on its default store, `sqlite:<data dir>/faas.db`.
// Creates actions, invokes them, kills the platform (SIGKILL, as a crash would), starts it again
// on the same data directory and checks that actions, the guest key and every activation record
// are there; a second platform on the same data directory is refused; a damaged store file is
// a clear error, not a panic. Every platform gets a temporary data directory.
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform node --test tests/e2e/sqlite.test.js
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const crypto = require('node:crypto')
const { execFile } = require('node:child_process')
const openwhisk = require('openwhisk')
const { AUTH, BIN, startNode, stopPlatform, tempDataDir } = require('./support')

// A standalone platform on a free loopback port in `dataDir`, with no --store (the default).
function startOn (dataDir, args = []) {
  return startNode('standalone', ['--listen', '127.0.0.1:0', '--data-dir', dataDir, ...args], 30000)
}

// Starts a platform that must fail; resolves with what it printed.
async function failsToStart (dataDir, args = []) {
  try {
    const running = await startOn(dataDir, args)
    await stopPlatform(running.proc, 'SIGKILL')
  } catch (e) {
    return e.message
  }
  assert.fail('the platform started')
}

async function eventually (fn, ms = 15000) {
  const deadline = Date.now() + ms
  for (;;) {
    try { return await fn() } catch (e) {
      if (Date.now() > deadline) throw e
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }
}

test('default store: actions, the guest key and activations survive kill -9', { timeout: 180000 }, async () => {
  const dir = tempDataDir()
  let running = await startOn(dir)
  try {
    const db = path.join(dir, 'faas.db')
    assert.ok(running.out.includes(`store: sqlite:${db} (durable)`), running.out)
    const generated = running.out.match(/guest auth \(generated\): (\S+)/)
    assert.ok(generated, `a fresh store gets a generated guest key:\n${running.out}`)
    const key = generated[1]
    let ow = openwhisk({ apihost: running.host, api_key: key })

    const actions = [
      { name: 'echo', kind: 'nodejs:default', action: 'function main(p) { console.log("n=" + p.n); return { twice: p.n * 2, from: p.from } }', params: { from: 'action' } },
      { name: 'py', kind: 'python:default', action: 'def main(args):\n    return {"plus": args.get("n", 0) + 1}\n' }
    ]
    for (const a of actions) await ow.actions.create(a)
    const before = {}
    for (const a of actions) before[a.name] = await ow.actions.get({ name: a.name })

    const ids = []
    for (const [i, a] of actions.entries()) {
      const r = await ow.actions.invoke({ name: a.name, blocking: true, params: { n: i + 1 } })
      assert.equal(r.response.success, true, JSON.stringify(r))
      ids.push(r.activationId)
      ids.push((await ow.actions.invoke({ name: a.name, params: { n: 10 + i } })).activationId)
    }
    const records = {}
    for (const id of ids) records[id] = await eventually(() => ow.activations.get({ name: id }))
    assert.deepEqual(records[ids[0]].response.result, { twice: 2, from: 'action' })

    // A crash, then a new process on the same data directory, with no key given.
    await stopPlatform(running.proc, 'SIGKILL')
    running = await startOn(dir)
    assert.ok(running.out.includes(`guest auth (kept from the store): ${key}`), running.out)
    ow = openwhisk({ apihost: running.host, api_key: key })

    for (const a of actions) {
      assert.deepEqual(await ow.actions.get({ name: a.name }), before[a.name], `action ${a.name} changed across the restart`)
    }
    const listed = (await ow.actions.list({ limit: 200 })).map(a => a.name).sort()
    assert.deepEqual(listed, ['echo', 'py'])
    for (const id of ids) {
      assert.deepEqual(await ow.activations.get({ name: id }), records[id], `activation ${id} changed across the restart`)
    }
    const listedIds = (await ow.activations.list({ limit: 200 })).map(a => a.activationId)
    assert.deepEqual(listedIds.slice().sort(), ids.slice().sort())
    assert.equal((await ow.activations.list({ count: true })).activations, ids.length)
    const byName = await ow.activations.list({ name: 'py', limit: 200 })
    assert.deepEqual(byName.map(a => a.activationId).sort(), [ids[2], ids[3]].sort())

    // The restarted platform keeps working on the same data.
    assert.deepEqual(await ow.actions.invoke({ name: 'echo', blocking: true, result: true, params: { n: 21 } }), { twice: 42, from: 'action' })

    // An explicit --guest-auth replaces the stored key; the old one stops working.
    await stopPlatform(running.proc, 'SIGTERM')
    running = await startOn(dir, ['--guest-auth', AUTH])
    assert.ok(!running.out.includes('guest auth ('), running.out)
    const withGiven = openwhisk({ apihost: running.host, api_key: AUTH })
    assert.equal((await withGiven.actions.list()).length, 2)
    const withOld = openwhisk({ apihost: running.host, api_key: key })
    await assert.rejects(withOld.actions.list(), e => e.statusCode === 401)
  } finally {
    await stopPlatform(running.proc, 'SIGTERM')
  }
})

test('a second platform on the same data directory is refused; the first keeps working', { timeout: 120000 }, async () => {
  const dir = tempDataDir()
  const first = await startOn(dir, ['--guest-auth', AUTH])
  try {
    const msg = await failsToStart(dir, ['--guest-auth', AUTH])
    assert.match(msg, /exited with [1-9]/, msg)
    assert.match(msg, /in use by another faas-platform \(pid \d+\)/, msg)
    assert.ok(!msg.includes('panicked'), msg)
    const ow = openwhisk({ apihost: first.host, api_key: AUTH })
    await ow.actions.create({ name: 'still', kind: 'nodejs:default', action: 'function main() { return { ok: true } }' })
    assert.deepEqual(await ow.actions.invoke({ name: 'still', blocking: true, result: true }), { ok: true })
  } finally {
    await stopPlatform(first.proc, 'SIGTERM')
  }
})

test('a damaged store file is a clear error, not a panic', { timeout: 60000 }, async () => {
  const dir = tempDataDir()
  fs.writeFileSync(path.join(dir, 'faas.db'), Buffer.alloc(8192, 0x5a))
  const msg = await failsToStart(dir, ['--guest-auth', AUTH])
  assert.match(msg, /exited with [1-9]/, msg)
  assert.match(msg, /is not a usable SQLite database/, msg)
  assert.ok(!msg.includes('panicked'), msg)
})

test('--store memory: keeps nothing and says so', { timeout: 60000 }, async () => {
  const dir = tempDataDir()
  const running = await startOn(dir, ['--store', 'memory:', '--guest-auth', AUTH])
  try {
    assert.ok(running.out.includes('store: memory: (in memory: nothing is kept after exit)'), running.out)
    assert.deepEqual(fs.readdirSync(dir), [], 'memory: writes nothing to the data directory')
  } finally {
    await stopPlatform(running.proc, 'SIGTERM')
  }
})

// `faas-platform admin <args…>` → { code, stdout, stderr } (no operator settings from the environment).
function admin (args) {
  return new Promise(resolve => {
    const env = { ...process.env, RUST_LOG: 'warn' }
    for (const k of ['FAAS_ADMIN_URL', 'FAAS_ADMIN_AUTH', 'FAAS_STORE', 'FAAS_BUS', 'FAAS_CONFIG']) delete env[k]
    execFile(BIN, ['admin', ...args], { env, timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout: stdout.trim(), stderr: stderr.trim() })
    })
  })
}

test('the admin CLI manages users of a running platform on its SQLite file through the admin API', { timeout: 180000 }, async () => {
  const dir = tempDataDir()
  const token = crypto.randomBytes(32).toString('base64url')
  let running = await startOn(dir, ['--admin-auth', token])
  try {
    const viaApi = ['--url', running.host, '--admin-auth', token]
    const created = await admin([...viaApi, 'user', 'create', 'alice-user', '--namespace', 'alice'])
    assert.equal(created.code, 0, created.stderr)
    const alice = created.stdout
    assert.match(alice, /^[0-9a-f-]{36}:[A-Za-z0-9]{64}$/)

    // The file belongs to the running platform: the CLI cannot open it behind its back.
    const direct = await admin(['--store', `sqlite:${path.join(dir, 'faas.db')}`, 'user', 'list', 'alice'])
    assert.notEqual(direct.code, 0)
    assert.match(direct.stderr, /in use by another faas-platform/)

    const ow = openwhisk({ apihost: running.host, api_key: alice })
    assert.deepEqual(await ow.namespaces.list(), ['alice'])
    await ow.actions.create({ name: 'me', kind: 'nodejs:default', action: 'function main() { return { me: "alice" } }' })
    assert.deepEqual(await ow.actions.invoke({ name: 'me', blocking: true, result: true }), { me: 'alice' })

    const limits = await admin([...viaApi, 'limits', 'set', 'alice', '--invocationsPerMinute', '1'])
    assert.equal(limits.code, 0, limits.stderr)
    await assert.rejects(ow.actions.invoke({ name: 'me', blocking: true, result: true }), e => e.statusCode === 429)

    // Users made through the API are in the file: a crash and a restart keep them.
    await stopPlatform(running.proc, 'SIGKILL')
    running = await startOn(dir, ['--admin-auth', token])
    const listed = await admin(['--url', running.host, '--admin-auth', token, 'user', 'list', 'alice'])
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(listed.stdout, `${alice}\talice-user`)
    const again = openwhisk({ apihost: running.host, api_key: alice })
    assert.deepEqual((await again.actions.list()).map(a => a.name), ['me'])

    const deleted = await admin(['--url', running.host, '--admin-auth', token, 'user', 'delete', 'alice-user'])
    assert.equal(deleted.code, 0, deleted.stderr)
    await assert.rejects(again.namespaces.list(), e => e.statusCode === 401)
  } finally {
    await stopPlatform(running.proc, 'SIGKILL')
  }
})
