// End-to-end: web actions and the API gateway on the real `faas-platform standalone` binary,
// with real Node.js actions, driven by the `openwhisk` npm client and plain fetch: one web
// action per extension, raw-http, require-whisk-auth, CORS, and an API route created, called,
// listed, fetched and deleted.
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform node --test tests/e2e/web.test.js
'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const openwhisk = require('openwhisk')
const { AUTH, startPlatform, stop } = require('./support')

let proc
let apihost
let ow

before(async () => {
  const started = await startPlatform()
  proc = started.proc
  apihost = started.host
  ow = openwhisk({ apihost, api_key: AUTH })
})

after(async () => { if (proc) await stop(proc) })

const basic = () => 'Basic ' + Buffer.from(AUTH).toString('base64')
const web = (name, ext = '') => `${apihost}/api/v1/web/guest/default/${name}${ext}`

async function webAction (name, code, annotations = {}) {
  const ann = Object.entries({ 'web-export': true, ...annotations }).map(([key, value]) => ({ key, value }))
  await ow.actions.update({ name, action: { exec: { kind: 'nodejs:default', code }, annotations: ann } })
}

test('a web action per extension, with fetch', async () => {
  await webAction('page', 'function main(p) { return { body: `<h1>hi ${p.name}</h1>` } }')
  await webAction('data', 'function main(p) { return { name: p.name, method: p.__ow_method, path: p.__ow_path, user: p.__ow_user || null } }')
  await webAction('words', 'function main(p) { return { text: `count ${Object.keys(p).length > 0}` } }')
  await webAction('pic', 'function main() { return { svg: "<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>" } }')
  await webAction('png', 'function main() { return { statusCode: 201, headers: { "content-type": "image/png", "x-made-by": "faas" }, body: Buffer.from([137, 80, 78, 71]).toString("base64") } }')
  await webAction('redirect', 'function main() { return { statusCode: 302, headers: { location: "/elsewhere" } } }')

  let r = await fetch(web('page', '.html') + '?name=you')
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('content-type'), 'text/html; charset=UTF-8')
  assert.equal(await r.text(), '<h1>hi you</h1>')
  assert.match(r.headers.get('x-openwhisk-activation-id'), /^[0-9a-f]{32}$/)

  r = await fetch(web('data', '.json') + '/extra/path', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'body' })
  })
  assert.deepEqual(await r.json(), { name: 'body', method: 'post', path: '/extra/path', user: null })
  r = await fetch(web('data', '.json') + '?name=q', { headers: { authorization: basic() } })
  assert.deepEqual(await r.json(), { name: 'q', method: 'get', path: '', user: 'guest' })
  // The activation is the namespace owner's, readable with the client.
  const id = r.headers.get('x-openwhisk-activation-id')
  const activation = await ow.activations.get({ name: id })
  assert.equal(activation.name, 'data')

  r = await fetch(web('words', '.text'))
  assert.equal(r.headers.get('content-type'), 'text/plain; charset=UTF-8')
  assert.equal(await r.text(), 'count true')
  r = await fetch(web('pic', '.svg'))
  assert.equal(r.headers.get('content-type'), 'image/svg+xml')
  assert.match(await r.text(), /^<svg/)
  for (const url of [web('png', '.http'), web('png')]) {
    r = await fetch(url)
    assert.equal(r.status, 201)
    assert.equal(r.headers.get('content-type'), 'image/png')
    assert.equal(r.headers.get('x-made-by'), 'faas')
    assert.deepEqual([...new Uint8Array(await r.arrayBuffer())], [137, 80, 78, 71])
  }
  r = await fetch(web('redirect'), { redirect: 'manual' })
  assert.equal(r.status, 302)
  assert.equal(r.headers.get('location'), '/elsewhere')

  // Not exported, missing, wrong projection: OpenWhisk's errors.
  await ow.actions.update({ name: 'hidden', action: { exec: { kind: 'nodejs:default', code: 'function main() { return {} }' } } })
  for (const url of [web('hidden', '.json'), web('missing', '.json')]) {
    r = await fetch(url)
    assert.equal(r.status, 404)
    assert.equal((await r.json()).error, 'The requested resource does not exist.')
  }
  r = await fetch(web('page', '.json'))
  assert.equal(r.status, 200, 'an object is valid JSON')
  r = await fetch(web('words', '.svg'))
  assert.equal(r.status, 400)
  assert.equal((await r.json()).error, "Response is not valid 'image/svg+xml'.")
})

test('raw-http actions get the query and body as they came', async () => {
  await webAction('raw', 'function main(p) { return { q: p.__ow_query, b: p.__ow_body, name: p.name || null } }', { 'raw-http': true })
  const r = await fetch(web('raw', '.json') + '?name=x&y=1', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' })
  assert.deepEqual(await r.json(), { q: 'name=x&y=1', b: 'hello', name: null })
})

test('require-whisk-auth with a secret or with platform credentials', async () => {
  await webAction('secret', 'function main() { return { ok: true } }', { 'require-whisk-auth': 's3cr3t' })
  await webAction('members', 'function main(p) { return { who: p.__ow_user } }', { 'require-whisk-auth': true })
  let r = await fetch(web('secret', '.json'))
  assert.equal(r.status, 401)
  r = await fetch(web('secret', '.json'), { headers: { 'x-require-whisk-auth': 'wrong' } })
  assert.equal(r.status, 401)
  r = await fetch(web('secret', '.json'), { headers: { 'x-require-whisk-auth': 's3cr3t' } })
  assert.deepEqual([r.status, await r.json()], [200, { ok: true }])
  r = await fetch(web('members', '.json'))
  assert.equal(r.status, 401)
  r = await fetch(web('members', '.json'), { headers: { authorization: basic() } })
  assert.deepEqual(await r.json(), { who: 'guest' })
})

test('CORS: OPTIONS by the platform, or by the action with web-custom-options', async () => {
  await webAction('open', 'function main() { return { body: "x" } }')
  await webAction('custom', 'function main(p) { return { statusCode: 200, headers: { "access-control-allow-origin": "https://example.invalid", "x-method": p.__ow_method } } }', { 'web-custom-options': true })
  let r = await fetch(web('open'), { method: 'OPTIONS', headers: { 'access-control-request-headers': 'x-custom' } })
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('access-control-allow-origin'), '*')
  assert.equal(r.headers.get('access-control-allow-methods'), 'OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH')
  assert.equal(r.headers.get('access-control-allow-headers'), 'x-custom')
  r = await fetch(web('open'))
  assert.equal(r.headers.get('access-control-allow-origin'), '*')
  r = await fetch(web('custom'), { method: 'OPTIONS' })
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('x-method'), 'options')
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://example.invalid')
})

test('an API route created, called, listed, fetched and deleted with the npm client', async () => {
  await webAction('getBook', 'function main(p) { return { statusCode: 200, body: { path: p.__ow_path, method: p.__ow_method, q: p.q || null } } }')
  await webAction('listBooks', 'function main() { return { books: ["Dune"] } }')
  const created = await ow.routes.create({ basepath: '/club', relpath: '/books/{isbn}', operation: 'GET', action: 'getBook', responsetype: 'http', name: 'Book Club' })
  assert.equal(created.gwApiUrl, `${apihost}/api/guest/club`)
  assert.equal(created.apidoc.info.title, 'Book Club')
  await ow.routes.create({ basepath: '/club', relpath: '/books', operation: 'GET', action: 'listBooks' })

  let r = await fetch(`${created.gwApiUrl}/books/978-0441?q=1`)
  assert.equal(r.status, 200)
  assert.deepEqual(await r.json(), { path: '/club/books/978-0441', method: 'get', q: '1' })
  r = await fetch(`${created.gwApiUrl}/books`)
  assert.deepEqual(await r.json(), { books: ['Dune'] })
  r = await fetch(`${created.gwApiUrl}/books/1`, { method: 'DELETE' })
  assert.equal(r.status, 405)

  const list = await ow.routes.list()
  assert.equal(list.apis.length, 1)
  const doc = list.apis[0].value.apidoc
  assert.deepEqual(Object.keys(doc.paths).sort(), ['/books', '/books/{isbn}'])
  assert.equal(doc.paths['/books/{isbn}'].get['x-openwhisk'].action, 'getBook')
  const got = await ow.routes.get({ basepath: '/club' })
  assert.equal(got.apis[0].value.gwApiUrl, created.gwApiUrl)
  const byName = await ow.routes.get({ name: 'Book Club' })
  assert.equal(byName.apis[0].value.apidoc.basePath, '/club')

  await ow.routes.delete({ basepath: '/club', relpath: '/books', operation: 'GET' })
  r = await fetch(`${created.gwApiUrl}/books`)
  assert.equal(r.status, 404)
  await ow.routes.delete({ basepath: '/club' })
  r = await fetch(`${created.gwApiUrl}/books/1`)
  assert.equal(r.status, 404)
  assert.deepEqual((await ow.routes.list()).apis, [])
  await assert.rejects(ow.routes.create({ basepath: '/x', relpath: '/y', operation: 'GET', action: 'hidden' }),
    e => e.statusCode === 400 && /does not exist or is not a web action/.test(e.message))
})
