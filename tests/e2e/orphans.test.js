// A platform killed with SIGKILL (no chance to clean up) leaves no action runners behind:
// the runners notice they were re-parented and exit.
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform node --test orphans.test.js
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const BIN = process.env.FAAS_PLATFORM_BIN ||
  path.join(__dirname, '..', '..', 'target', 'debug', 'faas-platform')
const AUTH = '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP'

function childrenOf (pid) {
  const out = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) out.push(Number(entry))
    } catch { /* gone */ }
  }
  return out
}

function alive (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch { return false }
}

test('runners exit when the platform is killed', async () => {
  const p = spawn(BIN, ['standalone', '--listen', '127.0.0.1:0', '--guest-auth', AUTH], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn' }
  })
  try {
    const host = await new Promise((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error('platform did not start:\n' + out)), 30000)
      p.stdout.on('data', d => {
        out += d
        const m = out.match(/listening on (http:\/\/[0-9.:]+)/)
        if (m) { clearTimeout(timer); resolve(m[1]) }
      })
      p.stderr.on('data', d => { out += d })
      p.on('exit', c => { clearTimeout(timer); reject(new Error(`exited ${c}:\n${out}`)) })
    })
    const headers = {
      authorization: 'Basic ' + Buffer.from(AUTH).toString('base64'),
      'content-type': 'application/json'
    }
    for (const [name, kind, code] of [
      ['orph-js', 'nodejs:default', 'function main() { return { ok: true } }'],
      ['orph-py', 'python:default', 'def main(a):\n    return {"ok": True}\n']
    ]) {
      const put = await fetch(`${host}/api/v1/namespaces/_/actions/${name}`,
        { method: 'PUT', headers, body: JSON.stringify({ exec: { kind, code } }) })
      assert.equal(put.status, 200)
      const r = await fetch(`${host}/api/v1/namespaces/_/actions/${name}?blocking=true&result=true`,
        { method: 'POST', headers, body: '{}' })
      assert.equal(r.status, 200)
    }
    const runners = childrenOf(p.pid)
    assert.ok(runners.length >= 2, `expected runner processes, found ${runners}`)
    p.kill('SIGKILL')
    const deadline = Date.now() + 10000
    while (runners.some(alive) && Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    assert.deepEqual(runners.filter(alive), [], 'runners still alive after the platform died')
  } finally {
    p.kill('SIGKILL')
  }
})
