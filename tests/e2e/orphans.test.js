// A platform killed with SIGKILL (no chance to clean up) leaves no action runners behind:
// the runners notice they were re-parented and exit.
// Run: FAAS_PLATFORM_BIN=target/debug/faas-platform node --test orphans.test.js
'use strict'

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { AUTH, startPlatform, processTree } = require('./support')

function childrenOf (pid) {
  return processTree().get(pid) || []
}

function alive (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch { return false }
}

test('runners exit when the platform is killed', async () => {
  const { proc: p, host } = await startPlatform()
  try {
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
