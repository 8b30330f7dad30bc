// Kinds come from the invokers: a controller on its default (Docker) kinds with a
// process-executor invoker runs `nodejs:default` on what that invoker reports (nodejs:20 where
// Docker's image is nodejs:18); a kind no live invoker runs is refused at create (400) and at
// invoke (503) in OpenWhisk's error shape; a Docker invoker joining adds its kinds, and each
// action goes only to an invoker that runs its kind; the invokers stay `up` throughout.
// Needs FAAS_TEST_KAFKA_BROKERS, FAAS_TEST_COUCHDB_URL and Docker (scripts/test.sh sets them
// up); skips without them unless FAAS_REQUIRE_SERVICES=1 (then it fails).
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')

const { stop, cluster, api, eventually, invokers } = require('./support')
const { skip, node, stopAll, KAFKA, COUCH, run } = cluster({ storePrefix: 'e2e_kinds_', busPrefix: 'e2ek' })

async function runtimes (host) {
  const r = await fetch(`${host}/`)
  return (await r.json()).runtimes
}

function assertError (r, status, pattern) {
  assert.equal(r.status, status, r.text)
  assert.deepEqual(Object.keys(r.json).sort(), ['code', 'error'], r.text)
  assert.match(r.json.error, pattern)
}

const JS = 'function main(p) { return { v: process.version, n: p.n } }'

test('kinds from the invokers: mixed executors, a kind no invoker runs', { skip, timeout: 300000 }, async (t) => {
  assert.ok(KAFKA && COUCH, 'FAAS_TEST_KAFKA_BROKERS and FAAS_TEST_COUCHDB_URL must be set when FAAS_REQUIRE_SERVICES=1')
  t.after(stopAll)

  // The controller's own kinds are Docker's (its default executor); the one invoker runs
  // local processes.
  const ctl = await node('controller', ['--id', '0', '--listen', '127.0.0.1:0'])
  const host = ctl.host
  const fallback = await runtimes(host)
  const dockerNode = fallback.nodejs.find(k => k.default).kind
  const proc = await node('invoker', ['--id', '0', '--user-memory-mb', '1024', '--executor', 'process:'])
  await eventually('the process invoker is up', async () => {
    assert.deepEqual(await invokers(host), { invoker0: 'up' })
  }, 30000)
  const processNode = `nodejs:${process.versions.node.split('.')[0]}`
  await eventually('the runtimes are the invoker\'s', async () => {
    const r = await runtimes(host)
    assert.deepEqual(r.nodejs.map(k => k.kind), [processNode])
  }, 10000)

  // nodejs:default is the invoker's Node.js, and runs (more than four times: an invoker
  // refusing them used to be marked unhealthy after four).
  let put = await api(host, 'PUT', '/namespaces/_/actions/k-js', { exec: { kind: 'nodejs:default', code: JS } })
  assert.equal(put.status, 200, put.text)
  assert.equal(put.json.exec.kind, processNode)
  for (let n = 0; n < 6; n++) {
    const r = await api(host, 'POST', '/namespaces/_/actions/k-js?blocking=true&result=true', { n })
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.json, { v: process.version, n })
  }

  // A kind no live invoker runs: 400 at create, naming the valid kinds.
  if (dockerNode !== processNode) {
    put = await api(host, 'PUT', '/namespaces/_/actions/k-docker', { exec: { kind: dockerNode, code: JS } })
    assertError(put, 400, new RegExp(`The specified runtime '${dockerNode}' is not supported by this platform\\. Valid values are: .*${processNode}`))
  }
  put = await api(host, 'PUT', '/namespaces/_/actions/k-bb', { exec: { kind: 'blackbox', image: 'faas-runtime-nodejs:18' } })
  assertError(put, 400, /The specified runtime 'blackbox' is not supported/)

  // A Docker invoker joins: its kinds are offered too, and each action runs where its kind is.
  const docker = await node('invoker', ['--id', '1', '--user-memory-mb', '1024'])
  await eventually('both invokers up', async () => {
    assert.deepEqual(await invokers(host), { invoker0: 'up', invoker1: 'up' })
  }, 30000)
  await eventually('Docker\'s kinds are offered', async () => {
    const r = await runtimes(host)
    assert.ok(r.nodejs.some(k => k.kind === dockerNode), JSON.stringify(r))
  }, 10000)
  put = await api(host, 'PUT', '/namespaces/_/actions/k-docker', { exec: { kind: dockerNode, code: JS } })
  assert.equal(put.status, 200, put.text)
  const dockerVersion = async () => {
    const r = await api(host, 'POST', '/namespaces/_/actions/k-docker?blocking=true&result=true', { n: 1 })
    assert.equal(r.status, 200, r.text)
    return r.json.v
  }
  const seen = new Set()
  for (let n = 0; n < 4; n++) seen.add(await dockerVersion())
  assert.equal(seen.size, 1, [...seen].join(' '))
  assert.equal([...seen][0].split('.')[0], `v${dockerNode.split(':')[1]}`)
  for (let n = 0; n < 4; n++) {
    const r = await api(host, 'POST', '/namespaces/_/actions/k-js?blocking=true&result=true', { n })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.json.v, process.version, 'the process invoker runs it')
  }

  // The Docker invoker leaves: its action's kind has no invoker any more (503, the kind named);
  // the process invoker is still up and still runs its kind.
  await stop(docker.p)
  await eventually('invoker1 is down', async () => {
    assert.equal((await invokers(host)).invoker1, 'down')
  }, 30000)
  const r = await api(host, 'POST', '/namespaces/_/actions/k-docker?blocking=true', { n: 1 })
  assertError(r, 503, new RegExp(`No invokers available that can run actions of kind '${dockerNode}'`))
  const ok = await api(host, 'POST', '/namespaces/_/actions/k-js?blocking=true&result=true', { n: 9 })
  assert.equal(ok.status, 200, ok.text)
  assert.equal((await invokers(host)).invoker0, 'up')
  assert.ok(proc.p.exitCode === null, 'the process invoker still running')
})
