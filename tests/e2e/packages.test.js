// End-to-end: packages, bindings, the whisk.system catalog and conductor actions with the
// `openwhisk` npm client against `faas-platform standalone`, on the in-memory store and on the
// CouchDB store of `scripts/services/couchdb.sh` (FAAS_TEST_COUCHDB_URL; skipped without it
// unless FAAS_REQUIRE_SERVICES=1, then it fails).
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform node --test tests/e2e/packages.test.js
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const openwhisk = require('openwhisk')
const { AUTH, startPlatform } = require('./support')

const COUCH = (process.env.FAAS_TEST_COUCHDB_URL || '').trim()
const REQUIRED = ['1', 'true'].includes(process.env.FAAS_REQUIRE_SERVICES || '')

function withPrefix (storeUrl, prefix) {
  const u = new URL(storeUrl.replace(/^couchdb:/, 'http:'))
  u.searchParams.set('prefix', prefix)
  return u.toString().replace(/^http:/, 'couchdb:')
}

async function scenario (host) {
  const ow = openwhisk({ apihost: host, api_key: AUTH })
  const js = code => ({ exec: { kind: 'nodejs:default', code } })

  // The catalog is installed and published: echo directly, and through a binding.
  const echo = await ow.actions.invoke({ name: '/whisk.system/utils/echo', blocking: true, result: true, params: { hi: 'there' } })
  assert.deepEqual(echo, { hi: 'there' })
  const sorted = await ow.actions.invoke({ name: '/whisk.system/utils/sort', blocking: true, result: true, params: { lines: ['b', 'c', 'a'] } })
  assert.deepEqual(sorted, { lines: ['a', 'b', 'c'], length: 3 })
  const count = await ow.actions.invoke({ name: '/whisk.system/samples/wordCount', blocking: true, result: true, params: { payload: 'five fuzzy felines' } })
  assert.deepEqual(count, { count: 3 })
  const ns = await ow.actions.invoke({ name: '/whisk.system/utils/namespace', blocking: true, result: true })
  assert.deepEqual(ns, { namespace: 'guest' }, 'catalog actions run as the caller')
  const catalog = await ow.packages.list({ namespace: 'whisk.system' })
  assert.deepEqual(catalog.map(p => p.name).sort(), ['alarms', 'samples', 'utils'])
  const utils = await ow.packages.get({ name: '/whisk.system/utils' })
  assert.ok(utils.actions.some(a => a.name === 'echo'), JSON.stringify(utils))

  await ow.packages.create({ name: 'myutils', package: { binding: { namespace: 'whisk.system', name: 'utils' }, parameters: [{ key: 'from', value: 'binding' }] } })
  const viaBinding = await ow.actions.invoke({ name: 'myutils/echo', blocking: true, result: true, params: { hi: 'again' } })
  assert.deepEqual(viaBinding, { from: 'binding', hi: 'again' })

  // A package of our own: CRUD, parameters inherited and overridden through a binding.
  const created = await ow.packages.create({ name: 'greet', package: { parameters: [{ key: 'greeting', value: 'hello' }, { key: 'who', value: 'world' }] } })
  assert.equal(created.name, 'greet')
  await ow.actions.create({ name: 'greet/say', action: js('function main(p) { return { text: p.greeting + ", " + p.who } }') })
  assert.deepEqual(await ow.actions.invoke({ name: 'greet/say', blocking: true, result: true }), { text: 'hello, world' })
  await ow.packages.create({ name: 'greetfr', package: { binding: { namespace: '_', name: 'greet' }, parameters: [{ key: 'greeting', value: 'bonjour' }] } })
  assert.deepEqual(await ow.actions.invoke({ name: 'greetfr/say', blocking: true, result: true }), { text: 'bonjour, world' })
  assert.deepEqual(await ow.actions.invoke({ name: 'greetfr/say', blocking: true, result: true, params: { who: 'monde' } }), { text: 'bonjour, monde' })
  const binding = await ow.packages.get({ name: 'greetfr' })
  assert.deepEqual(binding.binding, { namespace: 'guest', name: 'greet' })
  assert.deepEqual(binding.actions.map(a => a.name), ['say'])
  const updated = await ow.packages.update({ name: 'greet', package: { publish: true } })
  assert.equal(updated.publish, true)
  assert.equal(updated.version, '0.0.2')
  const mine = await ow.packages.list()
  assert.deepEqual(mine.map(p => p.name).sort(), ['greet', 'greetfr', 'myutils'])

  // A non-empty package is refused deletion (409) until forced or emptied.
  await assert.rejects(ow.packages.delete({ name: 'greet' }), e => e.statusCode === 409)
  await ow.packages.delete({ name: 'greetfr' })
  await ow.actions.delete({ name: 'greet/say' })
  await ow.packages.delete({ name: 'greet' })
  await assert.rejects(ow.packages.get({ name: 'greet' }), e => e.statusCode === 404)

  // A conductor composing two actions.
  await ow.actions.create({ name: 'double', action: js('function main(p) { return { n: p.n * 2 } }') })
  await ow.actions.create({ name: 'inc', action: js('function main(p) { return { n: p.n + 1 } }') })
  await ow.actions.create({
    name: 'compose',
    action: { ...js(`function main(p) {
      switch (p.$step || 0) {
        case 0: return { action: 'double', params: { n: p.n }, state: { $step: 1 } }
        case 1: return { action: 'inc', params: { n: p.n }, state: { $step: 2 } }
        default: return { params: { n: p.n } }
      }
    }`),
    annotations: [{ key: 'conductor', value: true }] }
  })
  const composed = await ow.actions.invoke({ name: 'compose', blocking: true, params: { n: 5 } })
  assert.deepEqual(composed.response.result, { n: 11 })
  assert.equal(composed.logs.length, 5, 'conductor, double, conductor, inc, conductor')
  assert.ok(composed.annotations.some(a => a.key === 'conductor' && a.value === true))
  const steps = await Promise.all(composed.logs.map(id => ow.activations.get({ name: id })))
  assert.deepEqual(steps.map(a => a.name), ['compose', 'double', 'compose', 'inc', 'compose'])
  assert.ok(steps.every(a => a.cause === composed.activationId))
}

test('packages, bindings, the catalog and conductors (in-memory store)', { timeout: 120000 }, async () => {
  const { proc, host } = await startPlatform()
  try {
    await scenario(host)
  } finally {
    proc.kill('SIGTERM')
  }
})

const skip = !COUCH && !REQUIRED ? 'FAAS_TEST_COUCHDB_URL is not set (scripts/services/couchdb.sh start)' : false

test('packages, bindings, the catalog and conductors (CouchDB store)', { skip, timeout: 180000 }, async () => {
  assert.ok(COUCH, 'FAAS_TEST_COUCHDB_URL must be set when FAAS_REQUIRE_SERVICES=1')
  const store = withPrefix(COUCH, `faas_e2e_pkg_${process.pid}_${Date.now().toString(36)}_`)
  const { proc, host } = await startPlatform(['--store', store])
  try {
    await scenario(host)
  } finally {
    proc.kill('SIGTERM')
  }
})
