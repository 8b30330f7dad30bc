// End-to-end tests: start the real `faas-platform standalone` binary and drive it with the
// `openwhisk` npm client (and plain fetch for what the client does not expose).
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform npm test --prefix tests/e2e
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const openwhisk = require('openwhisk')
const { AUTH, startPlatform } = require('./support')

let proc
let apihost
let ow

before(async () => {
  const started = await startPlatform()
  proc = started.proc
  apihost = started.host
  ow = openwhisk({ apihost, api_key: AUTH, ignore_certs: true })
})

after(() => { if (proc) proc.kill('SIGTERM') })

function basic (auth = AUTH) {
  return 'Basic ' + Buffer.from(auth).toString('base64')
}

async function api (method, p, body, { auth = AUTH, headers = {} } = {}) {
  const init = { method, headers: { authorization: basic(auth), ...headers } }
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    init.headers['content-type'] = 'application/json'
  }
  const res = await fetch(`${apihost}/api/v1${p}`, init)
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.status, headers: res.headers, json, text }
}

async function eventually (fn, ms = 10000) {
  const deadline = Date.now() + ms
  for (;;) {
    try { return await fn() } catch (e) {
      if (Date.now() > deadline) throw e
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}

const uniq = (p) => `${p}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`

test('api info, namespaces and runtimes', async () => {
  const info = await fetch(`${apihost}/api/v1`).then(r => r.json())
  assert.equal(info.api_version, '1.0.0')
  const root = await fetch(`${apihost}/`).then(r => r.json())
  assert.ok(root.runtimes.nodejs.some(r => r.default), 'a default nodejs runtime')
  assert.ok(root.runtimes.python.some(r => r.default), 'a default python runtime')
  const ns = await ow.namespaces.list()
  assert.deepEqual(ns, ['guest'])
})

test('node.js action: create, invoke blocking and non-blocking, logs', async () => {
  const name = uniq('hello')
  await ow.actions.create({
    name,
    action: 'function main(p) { console.log("hi " + p.name); return { greeting: "hello " + p.name } }',
    kind: 'nodejs:default'
  })
  const r = await ow.actions.invoke({ name, blocking: true, result: true, params: { name: 'ann' } })
  assert.deepEqual(r, { greeting: 'hello ann' })

  const full = await ow.actions.invoke({ name, blocking: true, params: { name: 'bob' } })
  assert.equal(full.response.status, 'success')
  assert.equal(full.response.success, true)
  assert.deepEqual(full.response.result, { greeting: 'hello bob' })
  assert.match(full.activationId, /^[0-9a-f]{32}$/)
  const rec = await eventually(() => ow.activations.get({ name: full.activationId }))
  assert.equal(rec.name, name)
  assert.equal(rec.namespace, 'guest')
  assert.ok(rec.annotations.some(a => a.key === 'path' && a.value === `guest/${name}`))
  assert.ok(rec.logs.some(l => /^\d{4}-\d\d-\d\dT[\d:.]+Z\s+stdout: hi bob$/.test(l)), JSON.stringify(rec.logs))

  const nb = await ow.actions.invoke({ name, params: { name: 'cy' } })
  assert.match(nb.activationId, /^[0-9a-f]{32}$/)
  const rec2 = await eventually(() => ow.activations.get({ name: nb.activationId }))
  assert.deepEqual(rec2.response.result, { greeting: 'hello cy' })
  const logs = await ow.activations.logs({ name: nb.activationId })
  assert.ok(logs.logs.some(l => l.endsWith('stdout: hi cy')), JSON.stringify(logs))
  const res = await ow.activations.result({ name: nb.activationId })
  assert.deepEqual(res.result, { greeting: 'hello cy' })
})

test('python action: create and invoke blocking, logs', async () => {
  const name = uniq('py')
  await ow.actions.create({
    name,
    action: 'def main(args):\n    print("py " + args.get("x", "none"))\n    return {"double": args.get("n", 0) * 2}\n',
    kind: 'python:default'
  })
  const full = await ow.actions.invoke({ name, blocking: true, params: { n: 21, x: 'yes' } })
  assert.deepEqual(full.response.result, { double: 42 })
  const rec = await eventually(() => ow.activations.get({ name: full.activationId }))
  assert.ok(rec.logs.some(l => l.endsWith('stdout: py yes')), JSON.stringify(rec.logs))
})

test('parameters: action defaults merged with the payload, payload wins', async () => {
  const name = uniq('params')
  await ow.actions.create({
    name,
    action: 'function main(p) { return p }',
    kind: 'nodejs:default',
    params: { a: 1, b: 'default' }
  })
  const r = await ow.actions.invoke({ name, blocking: true, result: true, params: { b: 'given', c: true } })
  assert.deepEqual(r, { a: 1, b: 'given', c: true })
})

test('update then invoke runs the new code', async () => {
  const name = uniq('upd')
  await ow.actions.create({ name, action: 'function main() { return { v: 1 } }', kind: 'nodejs:default' })
  assert.deepEqual(await ow.actions.invoke({ name, blocking: true, result: true }), { v: 1 })
  const updated = await ow.actions.update({ name, action: 'function main() { return { v: 2 } }', kind: 'nodejs:default' })
  assert.equal(updated.version, '0.0.2')
  assert.deepEqual(await ow.actions.invoke({ name, blocking: true, result: true }), { v: 2 })
})

test('list actions and activations with paging, filters and count', async () => {
  const name = uniq('lst')
  await ow.actions.create({ name, action: 'function main() { return {} }', kind: 'nodejs:default' })
  const list = await ow.actions.list({ limit: 200 })
  assert.ok(list.some(a => a.name === name))
  const count = await api('GET', '/namespaces/_/actions?count=true')
  assert.equal(count.status, 200)
  assert.equal(typeof count.json.actions, 'number')
  for (let i = 0; i < 3; i++) await ow.actions.invoke({ name, blocking: true })
  const acts = await eventually(async () => {
    const a = await ow.activations.list({ name, limit: 2 })
    assert.equal(a.length, 2)
    return a
  })
  assert.ok(acts[0].start >= acts[1].start, 'newest first')
  const c = await eventually(async () => {
    const r = await api('GET', `/namespaces/_/activations?name=${name}&count=true`)
    assert.equal(r.json.activations, 3)
    return r
  })
  assert.equal(c.status, 200)
  const bad = await api('GET', '/namespaces/_/activations?docs=true&count=true')
  assert.equal(bad.status, 400)
  assert.equal(bad.json.error, "The parameter 'docs' is not permitted with 'count'.")
})

test('errors: 404, 409, 401, 400, 413', async () => {
  const missing = await api('GET', '/namespaces/_/actions/' + uniq('nope'))
  assert.equal(missing.status, 404)
  assert.equal(missing.json.error, 'The requested resource does not exist.')
  assert.ok(missing.json.code, 'error body carries the transaction id')
  assert.equal(missing.headers.get('x-request-id'), missing.json.code)

  const name = uniq('dup')
  await ow.actions.create({ name, action: 'function main() { return {} }', kind: 'nodejs:default' })
  await assert.rejects(
    ow.actions.create({ name, action: 'function main() { return {} }', kind: 'nodejs:default' }),
    e => e.statusCode === 409)

  const unauth = await api('GET', '/namespaces/_/actions', undefined, { auth: 'nobody:wrongkey' })
  assert.equal(unauth.status, 401)
  assert.ok(unauth.json.error)
  const noauth = await fetch(`${apihost}/api/v1/namespaces/_/actions`)
  assert.equal(noauth.status, 401)
  assert.match(noauth.headers.get('www-authenticate') || '', /Basic/)

  const badLimits = await api('PUT', `/namespaces/_/actions/${uniq('lim')}`,
    { exec: { kind: 'nodejs:default', code: 'function main(){return {}}' }, limits: { memory: 1024 } })
  assert.equal(badLimits.status, 400)
  assert.equal(badLimits.json.error, 'memory 1024 MB exceeds allowed threshold of 512 MB')

  const badKind = await api('PUT', `/namespaces/_/actions/${uniq('kind')}`, { exec: { kind: 'cobol:1', code: 'x' } })
  assert.equal(badKind.status, 400)
  assert.match(badKind.json.error, /The specified runtime 'cobol:1' is not supported/)

  const badJson = await api('PUT', `/namespaces/_/actions/${uniq('json')}`, '{"exec": ')
  assert.equal(badJson.status, 400)

  const badName = await api('PUT', '/namespaces/_/actions/' + encodeURIComponent(' bad'), { exec: { kind: 'nodejs:default', code: 'x' } })
  assert.equal(badName.status, 400)

  const foreign = await api('GET', '/namespaces/someoneelse/actions')
  assert.equal(foreign.status, 403)

  const big = await api('POST', `/namespaces/_/actions/${name}?blocking=true`, { data: 'x'.repeat(1024 * 1024 + 10) })
  assert.equal(big.status, 413)
  assert.match(big.json.error, /^Request larger than allowed: \d+ > 1048576 bytes\.$/)

  // nothing stored was changed by the failed requests
  const still = await ow.actions.get({ name })
  assert.equal(still.version, '0.0.1')
})

test('502 for application and developer errors, timeouts, and 202 after the blocking wait', async () => {
  const appErr = uniq('apperr')
  await ow.actions.create({ name: appErr, action: 'function main() { return { error: "nope" } }', kind: 'nodejs:default' })
  await assert.rejects(ow.actions.invoke({ name: appErr, blocking: true }), e => {
    assert.equal(e.statusCode, 502)
    assert.equal(e.error.response.status, 'application error')
    assert.deepEqual(e.error.response.result, { error: 'nope' })
    return true
  })

  const devErr = uniq('deverr')
  await ow.actions.create({ name: devErr, action: 'function main() { throw new Error("boom") }', kind: 'nodejs:default' })
  const d = await api('POST', `/namespaces/_/actions/${devErr}?blocking=true`, {})
  assert.equal(d.status, 502)
  assert.equal(d.json.response.status, 'action developer error')
  assert.match(JSON.stringify(d.json.response.result.error), /boom/)
  assert.match(d.headers.get('x-openwhisk-activation-id'), /^[0-9a-f]{32}$/)

  const slow = uniq('slow')
  await api('PUT', `/namespaces/_/actions/${slow}`, {
    exec: { kind: 'nodejs:default', code: 'function main() { return new Promise(r => setTimeout(() => r({ done: true }), 3000)) }' },
    limits: { timeout: 300 }
  })
  const t = await api('POST', `/namespaces/_/actions/${slow}?blocking=true`, {})
  assert.equal(t.status, 502)
  assert.equal(t.json.response.result.error, 'The action exceeded its time limits of 300 milliseconds.')
  assert.ok(t.json.annotations.some(a => a.key === 'timeout' && a.value === true))

  const waiter = uniq('waiter')
  await api('PUT', `/namespaces/_/actions/${waiter}`, {
    exec: { kind: 'nodejs:default', code: 'function main() { return new Promise(r => setTimeout(() => r({ late: true }), 1500)) }' }
  })
  const w = await api('POST', `/namespaces/_/actions/${waiter}?blocking=true&timeout=200`, {})
  assert.equal(w.status, 202)
  assert.match(w.json.activationId, /^[0-9a-f]{32}$/)
  const late = await eventually(() => ow.activations.get({ name: w.json.activationId }), 15000)
  assert.deepEqual(late.response.result, { late: true })
})
