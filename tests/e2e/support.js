// Shared by the end-to-end tests: the binary under test, the guest key, and starting a
// platform node the way a user would.
'use strict'

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const BIN = process.env.FAAS_PLATFORM_BIN ||
  path.join(__dirname, '..', '..', 'target', 'debug', 'faas-platform')
// OpenWhisk's well-known guest key.
const AUTH = '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP'

// Starts `faas-platform <mode> <args…>` and resolves `{ proc, host }` once it serves (host is
// undefined for an invoker, which serves no HTTP); rejects if it exits or takes over `ms`.
function startNode (mode, args = [], ms = 60000) {
  return new Promise((resolve, reject) => {
    const p = spawn(BIN, [mode, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'warn' }
    })
    let out = ''
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${mode} did not start in ${ms} ms:\n${out}`)) }, ms)
    p.stdout.on('data', d => {
      out += d
      const m = out.match(/listening on (http:\/\/[0-9.:]+)/) || out.match(/invoker \d+ running/)
      if (m) { clearTimeout(timer); resolve({ proc: p, host: m[1] }) }
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

module.exports = { BIN, AUTH, startNode, startPlatform, processTree, stop }
