// Shared by the end-to-end tests: the binary under test, the guest key, and starting a
// platform node the way a user would.
'use strict'

const { spawn } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const BIN = process.env.FAAS_PLATFORM_BIN ||
  path.join(__dirname, '..', '..', 'target', 'debug', 'faas-platform')
// OpenWhisk's well-known guest key.
const AUTH = '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP'

// Fresh data directories, removed when the test process exits: no test touches the real
// data directory (standalone's default store is `<data dir>/faas.db`).
const dataDirs = []
process.on('exit', () => {
  for (const d of dataDirs) fs.rmSync(d, { recursive: true, force: true })
})
function tempDataDir () {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-e2e-'))
  dataDirs.push(d)
  return d
}

// Starts `faas-platform <mode> <args…>` and resolves `{ proc, host, out }` once it serves
// (host is undefined for an invoker, which serves no HTTP; `out` is what it printed so far);
// rejects if it exits or takes over `ms`. Unless the arguments name one, each node gets a
// fresh data directory (`FAAS_DATA_DIR`).
function startNode (mode, args = [], ms = 60000) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' }
    if (!args.includes('--data-dir')) env.FAAS_DATA_DIR = tempDataDir()
    const p = spawn(BIN, [mode, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    let out = ''
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${mode} did not start in ${ms} ms:\n${out}`)) }, ms)
    p.stdout.on('data', d => {
      out += d
      const m = out.match(/listening on (http:\/\/[0-9.:]+)/) || out.match(/invoker \d+ running/)
      if (m) { clearTimeout(timer); resolve({ proc: p, host: m[1], out }) }
    })
    p.stderr.on('data', d => { out += d; if (process.env.E2E_VERBOSE) process.stderr.write(d) })
    p.on('exit', code => { clearTimeout(timer); reject(new Error(`${mode} exited with ${code}:\n${out}`)) })
  })
}

// A standalone platform on a free loopback port with the guest key.
function startPlatform (args = []) {
  return startNode('standalone', ['--listen', '127.0.0.1:0', '--guest-auth', AUTH, ...args], 30000)
}

// pid → pids of its children, from /proc (empty where there is no /proc).
function processTree () {
  const children = new Map()
  let entries = []
  try { entries = fs.readdirSync('/proc') } catch { return children }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8')
      // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (!children.has(ppid)) children.set(ppid, [])
      children.get(ppid).push(Number(e))
    } catch { /* gone */ }
  }
  return children
}

// Stops a node the way an operator does (SIGTERM: it finishes, destroys its containers and
// exits), and kills it if it has not exited after `ms`. Resolves with its exit code (or null).
function stop (proc, ms = 30000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode)
  return new Promise(resolve => {
    const timer = setTimeout(() => { proc.kill('SIGKILL') }, ms)
    proc.once('exit', code => { clearTimeout(timer); resolve(code) })
    proc.kill('SIGTERM')
  })
}


// The pids of `pid`'s descendants (Linux /proc; empty elsewhere).
function descendants (pid) {
  const children = processTree()
  const out = []
  const walk = (p) => { for (const c of children.get(p) || []) { out.push(c); walk(c) } }
  walk(pid)
  return out
}

// Stops a platform and waits (bounded) for it to exit. SIGKILL stands for a crash: the
// platform and the sandboxes it started (which run in process groups of their own) all die at
// once, with nothing flushed.
function stopPlatform (p, signal = 'SIGKILL') {
  return new Promise(resolve => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve()
    const orphans = signal === 'SIGKILL' ? descendants(p.pid) : []
    const timer = setTimeout(resolve, 10000)
    p.once('exit', () => {
      clearTimeout(timer)
      for (const pid of orphans) { try { process.kill(pid, 'SIGKILL') } catch {} }
      resolve()
    })
    p.kill(signal)
  })
}

// The distributed tests' cluster over the Kafka-API broker and CouchDB-API store named by
// FAAS_TEST_KAFKA_BROKERS and FAAS_TEST_COUCHDB_URL, with fresh database and topic prefixes:
// `skip` (a reason, or false; never when FAAS_REQUIRE_SERVICES=1), the store and bus URLs,
// `node(mode, args)` starting a node on them (stopped by `stopAll`), and the API helpers.
function cluster ({ storePrefix, busPrefix, nodeArgs = [] }) {
  const KAFKA = (process.env.FAAS_TEST_KAFKA_BROKERS || '').trim()
  const COUCH = (process.env.FAAS_TEST_COUCHDB_URL || '').trim()
  const REQUIRED = ['1', 'true'].includes(process.env.FAAS_REQUIRE_SERVICES || '')
  const skip = (!KAFKA || !COUCH) && !REQUIRED ? 'FAAS_TEST_KAFKA_BROKERS / FAAS_TEST_COUCHDB_URL not set' : false
  const run = crypto.randomBytes(4).toString('hex')
  const STORE = `${COUCH.replace(/\/?$/, '/')}?prefix=${storePrefix}${run}_`
  const BUS = `kafka://${KAFKA}?prefix=${busPrefix}${run}.`
  const procs = new Set()
  async function node (mode, args) {
    const { proc, host } = await startNode(mode, ['--store', STORE, '--bus', BUS, '--guest-auth', AUTH, ...nodeArgs, ...args])
    procs.add(proc)
    proc.on('exit', () => procs.delete(proc))
    return { p: proc, host }
  }
  const stopAll = () => Promise.all([...procs].map(p => stop(p)))
  return { KAFKA, COUCH, skip, run, STORE, BUS, procs, node, stopAll }
}

// A call of the REST API as the guest: status, parsed JSON (if any) and text.
function api (host, method, p, body) {
  return apiAs(host, AUTH, method, p, body)
}

// A call of the REST API with the key `key` (`uuid:secret`), as `api`.
async function apiAs (host, key, method, p, body) {
  const hs = { authorization: 'Basic ' + Buffer.from(key).toString('base64') }
  if (body !== undefined) hs['content-type'] = 'application/json'
  const res = await fetch(`${host}/api/v1${p}`, { method, headers: hs, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  let json
  try { json = JSON.parse(text) } catch { json = undefined }
  return { status: res.status, json, text }
}

// `fn` until it does not throw, every 200 ms, at most `ms`.
async function eventually (what, fn, ms) {
  const deadline = Date.now() + ms
  let last
  for (;;) {
    try { return await fn() } catch (e) { last = e }
    if (Date.now() > deadline) throw new Error(`${what}: ${last && last.message}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

// The controller's `/invokers` map.
async function invokers (host) {
  const r = await fetch(`${host}/invokers`)
  return r.json()
}

module.exports = { BIN, AUTH, startNode, startPlatform, stopPlatform, processTree, tempDataDir, stop, cluster, api, apiAs, eventually, invokers }
