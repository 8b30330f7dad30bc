#!/usr/bin/env node
// OpenWhisk-compatible action runner for Node.js (standard library only).
//
// Speaks the OpenWhisk action-proxy protocol (POST /init, POST /run) over
// HTTP/1.1 keep-alive. Listens on $__OW_LISTEN ("unix:/path" or
// "tcp:HOST:PORT"), default tcp 0.0.0.0:8080. See ../README.md.
'use strict';

const http = require('http');
const fs = require('fs');

// Every /run sets a few __OW_* variables. On the real process.env each distinct value is a
// setenv() that glibc never frees (a leak of ~100 bytes per value per activation) and that
// slows down as the environment grows; a plain object avoids both. Child processes still
// inherit it, since child_process reads process.env.
process.env = Object.assign({}, process.env);
const os = require('os');
const path = require('path');
const zlib = require('zlib');

const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n';

const BODY_OK = '{"ok":true}';
const BODY_REINIT = '{"error":"Cannot initialize the action more than once."}';
const BODY_MISSING = '{"error":"Missing main/no code to execute."}';
const BODY_UNINIT = '{"error":"Cannot invoke an uninitialized action."}';
const BODY_NOT_DICT = '{"error":"The action did not return a dictionary."}';
const BODY_NOT_FOUND = '{"error":"Not found."}';
const BODY_NOT_OBJECT = '{"error":"The request body must be a JSON object."}';

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

let actionMain = null; // the initialized entry point
let allowConcurrent = process.env.__OW_ALLOW_CONCURRENT === 'true';
let running = false; // a /run is in progress (only tracked when !allowConcurrent)
let current = null; // the in-progress run (only when !allowConcurrent)
const waiting = []; // queued [res, msg] when !allowConcurrent
let unixPath = null;
const tmpDirs = [];

// Never die because of a broken stdout/stderr pipe.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});

// ---------------------------------------------------------------- responses

function send(res, status, body) {
  res.sendDate = false;
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body); // headers and body go out in one write
}

// Write the sentinel on one stream, after everything already written to it.
// Returns null when done synchronously, else a Promise.
function sentinelOn(stream, fd) {
  if (stream.writableLength === 0) {
    try {
      fs.writeSync(fd, SENTINEL);
      return null;
    } catch (e) {
      if (e.code !== 'EAGAIN') return null; // closed/broken stream: give up
    }
  }
  // Earlier output is still queued (pipe was full): append behind it.
  return new Promise((resolve) => {
    try {
      stream.write(SENTINEL, () => resolve());
    } catch (e) {
      resolve();
    }
  });
}

// Write sentinels on stdout and stderr, then call done().
function withSentinels(done) {
  const a = sentinelOn(process.stdout, 1);
  const b = sentinelOn(process.stderr, 2);
  if (a === null && b === null) done();
  else Promise.all([a, b]).then(done, done);
}

function isErrorLike(e) {
  return e instanceof Error ||
    (e !== null && typeof e === 'object' && typeof e.message === 'string' && typeof e.stack === 'string');
}

function errorMessage(e) {
  if (isErrorLike(e)) return e.message || String(e);
  return String(e);
}

// JSON body for a failed activation: {"error": <message | object | string>}.
function errorBody(e) {
  let v;
  if (isErrorLike(e)) v = e.message || String(e);
  else if (e === undefined || e === null) v = 'The action failed without giving a reason.';
  else v = e; // plain object, string, number, ...
  try {
    return JSON.stringify({ error: v });
  } catch (err) {
    return JSON.stringify({ error: String(v) });
  }
}

function logError(e) {
  try {
    console.error(isErrorLike(e) && e.stack ? e.stack : e);
  } catch (err) { /* ignore */ }
}

// ---------------------------------------------------------------- loading

function resolvePath(obj, name) {
  if (obj === null || obj === undefined) return undefined;
  let v = obj;
  for (const part of name.split('.')) {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return undefined;
    v = v[part];
  }
  return v;
}

function buildFactory(code, main) {
  const tail = main === null ? '' :
    '\n;return typeof ' + main + ' === "function" ? ' + main + ' : undefined;';
  // The inner function lets the action's code shadow module/exports/require.
  return new Function('module', 'exports', 'require', '__filename', '__dirname',
    'return (function () {' + code + tail + '\n}).call(exports);');
}

function loadSource(code, main) {
  let factory = null;
  if (IDENT.test(main)) {
    try {
      factory = buildFactory(code, main);
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      // e.g. `main` is a reserved word; rebuilt below to report the code's own error.
    }
  }
  if (factory === null) factory = buildFactory(code, null);
  const mod = { exports: {} };
  const found = factory(mod, mod.exports, require, path.join(__dirname, 'action.js'), __dirname);
  if (typeof found === 'function') return found;
  return fromExports(mod.exports, main);
}

function fromExports(exp, main) {
  const fn = resolvePath(exp, main);
  if (fn !== undefined) return fn;
  if (typeof exp === 'function') return exp;
  return undefined;
}

// Minimal zip reader: central directory, stored and deflated entries.
function unzip(buf, dest) {
  const bad = (why) => new Error('Unable to unzip the action: ' + why);
  let eocd = -1;
  const min = Math.max(0, buf.length - 65557);
  for (let i = buf.length - 22; i >= min; i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw bad('not a zip archive.');
  const total = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  if (total === 0xffff || p === 0xffffffff) throw bad('zip64 archives are not supported.');
  for (let n = 0; n < total; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw bad('corrupt central directory.');
    const madeBy = buf.readUInt16LE(p + 4);
    const flags = buf.readUInt16LE(p + 8);
    const method = buf.readUInt16LE(p + 10);
    const csize = buf.readUInt32LE(p + 20);
    const nlen = buf.readUInt16LE(p + 28);
    const elen = buf.readUInt16LE(p + 30);
    const clen = buf.readUInt16LE(p + 32);
    const extAttr = buf.readUInt32LE(p + 38);
    const loff = buf.readUInt32LE(p + 42);
    const name = buf.toString((flags & 0x800) ? 'utf8' : 'latin1', p + 46, p + 46 + nlen).replace(/\\/g, '/');
    p += 46 + nlen + elen + clen;
    if (flags & 1) throw bad('encrypted entries are not supported.');
    const target = path.resolve(dest, name);
    if (target !== dest && !target.startsWith(dest + path.sep)) throw bad('unsafe path ' + JSON.stringify(name) + '.');
    if (name.endsWith('/')) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    if (loff + 30 > buf.length || buf.readUInt32LE(loff) !== 0x04034b50) throw bad('corrupt local header.');
    const start = loff + 30 + buf.readUInt16LE(loff + 26) + buf.readUInt16LE(loff + 28);
    const raw = buf.subarray(start, start + csize);
    let data;
    if (method === 0) data = raw;
    else if (method === 8) data = zlib.inflateRawSync(raw);
    else throw bad('unsupported compression method ' + method + '.');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const mode = (madeBy >> 8) === 3 ? (extAttr >>> 16) : 0; // unix permissions
    if ((mode & 0xf000) === 0xa000) fs.symlinkSync(data.toString('utf8'), target);
    else fs.writeFileSync(target, data, { mode: (mode & 0o777) || 0o644 });
  }
}

function loadZip(code, main) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faas-action-'));
  tmpDirs.push(dir);
  unzip(Buffer.from(code, 'base64'), dir);
  if (!fs.existsSync(path.join(dir, 'package.json')) && !fs.existsSync(path.join(dir, 'index.js'))) {
    throw new Error('Zipped actions must contain either package.json or index.js at the root.');
  }
  process.chdir(dir);
  return fromExports(require(dir), main);
}

// ---------------------------------------------------------------- handlers

function handleInit(res, msg) {
  if (actionMain !== null) return send(res, 403, BODY_REINIT);
  const value = msg !== null && typeof msg === 'object' ? msg.value : undefined;
  if (value === null || typeof value !== 'object') return send(res, 403, BODY_MISSING);
  let main = value.main;
  if (main === undefined || main === null || main === '') main = 'main';
  const code = value.code;
  if (typeof code !== 'string' || code === '' || typeof main !== 'string') return send(res, 403, BODY_MISSING);
  let fn;
  try {
    const env = value.env;
    if (env !== null && typeof env === 'object') {
      for (const k of Object.keys(env)) {
        const v = env[k];
        process.env[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
    }
    allowConcurrent = process.env.__OW_ALLOW_CONCURRENT === 'true';
    fn = value.binary ? loadZip(code, main) : loadSource(code, main);
    if (typeof fn !== 'function') throw new Error("Action entrypoint '" + main + "' is not a function.");
  } catch (e) {
    logError(e);
    const body = JSON.stringify({ error: 'Initialization has failed due to: ' + errorMessage(e) });
    return withSentinels(() => send(res, 502, body));
  }
  actionMain = fn;
  send(res, 200, BODY_OK);
}

function handleRun(res, msg) {
  if (actionMain === null) return send(res, 403, BODY_UNINIT);
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return send(res, 400, BODY_NOT_OBJECT);
  if (allowConcurrent) return startRun(res, msg);
  if (running) return void waiting.push([res, msg]);
  running = true;
  startRun(res, msg);
}

function startRun(res, msg) {
  const run = { res, done: false };
  if (!allowConcurrent) current = run;
  for (const k in msg) {
    if (k !== 'value') {
      const v = msg[k];
      if (typeof v === 'string') process.env['__OW_' + k.toUpperCase()] = v;
    }
  }
  let value = msg.value;
  if (value === undefined || value === null) value = {};
  let result;
  try {
    result = actionMain(value);
  } catch (e) {
    logError(e);
    return finish(run, 502, errorBody(e));
  }
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    Promise.resolve(result).then(
      (r) => finishResult(run, r),
      (e) => { logError(e); finish(run, 502, errorBody(e)); });
  } else {
    finishResult(run, result);
  }
}

function finishResult(run, result) {
  if (run.done) return;
  if (result === null || typeof result !== 'object') return finish(run, 502, BODY_NOT_DICT);
  let body;
  try {
    body = JSON.stringify(result);
  } catch (e) {
    return finish(run, 502, JSON.stringify({ error: 'The action returned a result that is not JSON serializable: ' + errorMessage(e) }));
  }
  const c = body === undefined ? 0 : body.charCodeAt(0);
  if (c !== 123 /* { */ && c !== 91 /* [ */) return finish(run, 502, BODY_NOT_DICT);
  finish(run, 200, body);
}

function finish(run, status, body) {
  if (run.done) return;
  run.done = true;
  withSentinels(() => {
    send(run.res, status, body);
    if (run === current) {
      current = null;
      const next = waiting.shift();
      if (next) startRun(next[0], next[1]);
      else running = false;
    }
  });
}

// An error escaping the action's asynchronous code fails the in-progress
// activation (when runs are serialized) instead of killing the runner.
function onStrayError(e) {
  logError(e);
  if (current !== null && !current.done) finish(current, 502, errorBody(e));
}
process.on('uncaughtException', onStrayError);
process.on('unhandledRejection', onStrayError);

// ---------------------------------------------------------------- server

const server = http.createServer({ noDelay: true }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = req.url;
    const isRun = url === '/run';
    if (req.method !== 'POST' || (!isRun && url !== '/init')) return send(res, 404, BODY_NOT_FOUND);
    let msg;
    try {
      const buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      msg = JSON.parse(buf.toString('utf8'));
    } catch (e) {
      return send(res, 400, JSON.stringify({ error: 'Malformed JSON request body: ' + e.message }));
    }
    if (isRun) handleRun(res, msg);
    else handleInit(res, msg);
  });
});
server.keepAliveTimeout = 0; // never close idle keep-alive connections
server.headersTimeout = 0;
server.requestTimeout = 0;
server.timeout = 0;

function cleanupAndExit() {
  if (unixPath !== null) {
    try { fs.unlinkSync(unixPath); } catch (e) { /* ignore */ }
  }
  for (const d of tmpDirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch (e) { /* ignore */ }
  }
  process.exit(0);
}
process.on('SIGTERM', cleanupAndExit);
process.on('SIGINT', cleanupAndExit);

// Started by the platform as a child process: exit when the platform goes away, even if it
// was killed without a chance to stop us (we are re-parented then).
if (process.env.__OW_EXIT_WITH_PARENT === '1') {
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) cleanupAndExit(); }, 1000).unref();
}

server.on('error', (e) => {
  try { fs.writeSync(2, 'runner: cannot listen: ' + e.message + '\n'); } catch (err) { /* ignore */ }
  process.exit(1);
});

const listen = process.env.__OW_LISTEN || 'tcp:0.0.0.0:8080';
if (listen.startsWith('unix:')) {
  unixPath = listen.slice(5);
  try { fs.unlinkSync(unixPath); } catch (e) { /* not there */ }
  server.listen(unixPath);
} else if (listen.startsWith('tcp:')) {
  const hp = listen.slice(4);
  const i = hp.lastIndexOf(':');
  let host = i >= 0 ? hp.slice(0, i) : '';
  const port = Number(i >= 0 ? hp.slice(i + 1) : hp);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  server.listen(port, host || '0.0.0.0');
} else {
  fs.writeSync(2, 'runner: unsupported __OW_LISTEN value: ' + listen + '\n');
  process.exit(2);
}
