// The platform as an attacker and a careless operator would try it: half-open connections
// (slowloris) must not stop it from answering, a SIGTERM with connections still open must end
// it within its shutdown deadline, and transport-level rejections carry OpenWhisk error bodies.
// Everything goes to 127.0.0.1; every loop and wait is bounded.
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform node --test hardening.test.js
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { AUTH, startPlatform } = require('./support')

function halfOpen (host, n) {
  const { hostname, port } = new URL(host)
  return Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const s = net.connect({ host: hostname, port: Number(port) }, () => {
      s.write('GET /api/v1 HTTP/1.1\r\nHost: x\r\nX-Slow: ')
      resolve(s)
    })
    s.on('error', () => resolve(s))
  })))
}

function exited (proc, ms) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve({ code: proc.exitCode, ms: 0 })
    const started = Date.now()
    const timer = setTimeout(() => { proc.kill('SIGKILL'); resolve({ code: null, ms }) }, ms)
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, ms: Date.now() - started }) })
  })
}

test('half-open connections neither stop the platform nor its shutdown', { timeout: 120000 }, async () => {
  // Short timeouts so that the test is quick; the defaults are 10 s (head) and 10 s (shutdown).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-e2e-'))
  const cfg = path.join(dir, 'c.toml')
  fs.writeFileSync(cfg, '[server]\nmax_connections = 200\nheader_read_timeout_ms = 1000\nshutdown_deadline_ms = 2000\n')
  const { proc, host } = await startPlatform(['--config', cfg])
  try {
    const sockets = await halfOpen(host, 300)
    // It still answers: at once (maybe 503 while the slots are held), and 200 once the
    // half-open heads have timed out.
    const first = await fetch(`${host}/api/v1`, { signal: AbortSignal.timeout(5000) }).catch(e => e)
    assert.ok(!(first instanceof Error), `no answer while connections are held: ${first}`)
    assert.ok([200, 503].includes(first.status), `status ${first.status}`)
    if (first.status === 503) {
      const body = await first.json()
      assert.ok(body.error && body.code, JSON.stringify(body))
    }
    let ok = false
    for (let i = 0; i < 50 && !ok; i++) {
      const r = await fetch(`${host}/api/v1`, { signal: AbortSignal.timeout(5000) }).catch(e => e)
      ok = !(r instanceof Error) && r.status === 200
      if (!ok) await new Promise(resolve => setTimeout(resolve, 200))
    }
    assert.ok(ok, 'the platform answers 200 again')
    for (const s of sockets) s.destroy()

    // Transport-level rejections have OpenWhisk bodies.
    const { hostname, port } = new URL(host)
    const raw = await new Promise((resolve) => {
      let out = ''
      const s = net.connect({ host: hostname, port: Number(port) }, () => s.write('NOT HTTP\r\n\r\n'))
      s.on('data', d => { out += d })
      s.on('close', () => resolve(out))
      s.on('error', () => resolve(out))
      s.setTimeout(5000, () => s.destroy())
    })
    assert.match(raw, /^HTTP\/1\.1 400 /)
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))
    assert.ok(body.error && body.code, raw)

    // A long or unsafe X-Request-ID is replaced by a fresh one.
    const auth = 'Basic ' + Buffer.from(AUTH).toString('base64')
    const r = await fetch(`${host}/api/v1/namespaces/_/actions`, { headers: { authorization: auth, 'x-request-id': 'x'.repeat(60000) } })
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('x-request-id').length, 32)

    // SIGTERM with a half-open connection: the platform still exits within its deadline.
    const lingering = await halfOpen(host, 3)
    proc.kill('SIGTERM')
    const { code, ms } = await exited(proc, 15000)
    for (const s of lingering) s.destroy()
    assert.equal(code, 0, `exit code ${code} after ${ms} ms`)
    assert.ok(ms < 10000, `took ${ms} ms`)
  } finally {
    if (proc.exitCode === null) proc.kill('SIGKILL')
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
