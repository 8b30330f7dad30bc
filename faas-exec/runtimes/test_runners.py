#!/usr/bin/env python3
"""Standalone tests for the Node.js and Python action runners.

Standard library only. Starts each runner as a subprocess (stdout/stderr are
pipes, as on the platform), talks HTTP/1.1 to it over a Unix socket (and TCP
once) and checks the protocol, the sentinels and keep-alive behaviour.

    python3 faas-exec/runtimes/test_runners.py [-v]

Every wait is bounded; a watchdog aborts the whole file after WATCHDOG_S.
"""
import base64
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_RUNNER = os.path.join(HERE, "nodejs", "runner.js")
PYTHON_RUNNER = os.path.join(HERE, "python", "runner.py")
SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
TIMEOUT = 5.0  # any single wait (connect, HTTP response, process exit)
SENTINEL_TIMEOUT = 2.0  # a sentinel normally follows within milliseconds
WATCHDOG_S = 28.0  # the whole file

_PROCS = []


def _watchdog():
    sys.stderr.write("\nWATCHDOG: tests exceeded %.0f s, aborting\n" % WATCHDOG_S)
    for p in _PROCS:
        try:
            p.kill()
        except Exception:
            pass
    os._exit(3)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix-domain socket."""

    def __init__(self, path, timeout=TIMEOUT):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class StreamReader(threading.Thread):
    """Collects the lines of one of the runner's output pipes."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.lines = []
        self.cond = threading.Condition()

    def run(self):
        for raw in iter(self.pipe.readline, b""):
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        self.pipe.close()

    def segment(self, n, timeout=SENTINEL_TIMEOUT):
        """Lines between sentinel n-1 and sentinel n (1-based), waiting for it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                idx = [i for i, l in enumerate(self.lines) if l == SENTINEL]
                if len(idx) >= n:
                    start = idx[n - 2] + 1 if n >= 2 else 0
                    return self.lines[start:idx[n - 1]]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("sentinel #%d not seen within %.1fs; lines: %r"
                                         % (n, timeout, self.lines[-10:]))
                self.cond.wait(left)

    def sentinel_count(self):
        with self.cond:
            return sum(1 for l in self.lines if l == SENTINEL)


class Runner:
    def __init__(self, cmd, tcp=False, env=None, stale_socket=False):
        self.tmp = tempfile.mkdtemp(prefix="rt-")
        self.sock_path = os.path.join(self.tmp, "r.sock")
        self.tcp_port = None
        if tcp:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.tcp_port = s.getsockname()[1]
            s.close()
            listen = "tcp:127.0.0.1:%d" % self.tcp_port
        else:
            listen = "unix:" + self.sock_path
            if stale_socket:
                with open(self.sock_path, "w") as f:
                    f.write("stale")
        e = dict(os.environ)
        for k in list(e):
            # PYTHONUNBUFFERED is dropped so the explicit flushes are what is tested
            if k.startswith("__OW_") or k in ("FOO", "PYTHONUNBUFFERED"):
                del e[k]
        e["__OW_LISTEN"] = listen
        e.update(env or {})
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=e, cwd=self.tmp)
        _PROCS.append(self.proc)
        self.out = StreamReader(self.proc.stdout)
        self.err = StreamReader(self.proc.stderr)
        self.out.start()
        self.err.start()
        self.expected_sentinels = 0
        self.returncode = None
        self.conn = self.connect()

    def new_connection(self):
        if self.tcp_port is not None:
            return http.client.HTTPConnection("127.0.0.1", self.tcp_port, timeout=TIMEOUT)
        return UnixHTTPConnection(self.sock_path)

    def connect(self):
        deadline = time.monotonic() + TIMEOUT
        while True:
            conn = self.new_connection()
            try:
                conn.connect()
                conn.auto_open = 0  # a server-side close must surface, not reconnect silently
                return conn
            except OSError:
                conn.close()
                if self.proc.poll() is not None:
                    raise AssertionError("runner exited early with %s: %r"
                                         % (self.proc.returncode, self.err.lines))
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def request(self, method, path, body=None, conn=None):
        conn = conn or self.conn
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        assert r.getheader("Content-Length") is not None, "response without Content-Length"
        assert int(r.getheader("Content-Length")) == len(data)
        assert not r.will_close, "runner asked to close the keep-alive connection"
        try:
            doc = json.loads(data)
        except ValueError:
            raise AssertionError("response is not JSON: %r" % data)
        return r.status, doc

    def init(self, code, main=None, binary=False, env=None, conn=None):
        value = {"name": "test", "binary": binary, "code": code}
        if main is not None:
            value["main"] = main
        if env is not None:
            value["env"] = env
        status, doc = self.request("POST", "/init", {"value": value}, conn)
        if status == 502:
            self.expected_sentinels += 1
        return status, doc

    def run(self, value=None, conn=None, **extra):
        msg = dict(extra)
        if value is not None:
            msg["value"] = value
        status, doc = self.request("POST", "/run", msg, conn)
        if status in (200, 502):
            self.expected_sentinels += 1
        return status, doc

    def stop(self):
        if self.returncode is None:
            try:
                self.conn.close()
            except Exception:
                pass
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(TIMEOUT)
                self.returncode = "killed (no exit on SIGTERM)"
            self.out.join(TIMEOUT)
            self.err.join(TIMEOUT)
            shutil.rmtree(self.tmp, ignore_errors=True)
        return self.returncode


def make_zip(files, stored=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text, compress_type=zipfile.ZIP_STORED if name in stored
                        else zipfile.ZIP_DEFLATED)
    return base64.b64encode(buf.getvalue()).decode()


class RunnerTests:
    """Behaviour shared by both runners. Subclasses supply CMD and snippets."""

    CMD = None
    ECHO = THROW = HANDLER = ENV = OWVARS = SELECT = CIRCULAR = SYNTAX = NOT_FUNC = None
    LARGE = CONCURRENCY = None

    def setUp(self):
        self.runners = []

    def tearDown(self):
        for r in self.runners:
            r.stop()
        for r in self.runners:
            if isinstance(r.returncode, int):
                self.assertEqual(r.out.sentinel_count(), r.expected_sentinels, "stdout sentinels")
                self.assertEqual(r.err.sentinel_count(), r.expected_sentinels, "stderr sentinels")

    def start(self, **kw):
        r = Runner(self.CMD, **kw)
        self.runners.append(r)
        return r

    def ready(self, code, **kw):
        r = self.start()
        self.assertEqual(r.init(code, **kw), (200, {"ok": True}))
        return r

    # ----------------------------------------------------------- basics

    def test_init_and_run_echo(self):
        r = self.ready(self.ECHO)
        args = {"name": "world", "n": 1, "nested": {"a": [1, 2, None]}, "s": "h\u00e9llo \u2603"}
        self.assertEqual(r.run(args), (200, args))
        # no sentinel after a successful init: first segment holds the run's log
        self.assertIn("MARK-run", r.out.segment(1))
        self.assertEqual(r.err.segment(1), [])

    def test_value_missing_is_empty_object_and_array_value_passes(self):
        r = self.ready(self.ECHO)
        self.assertEqual(r.run(None), (200, {}))
        self.assertEqual(r.run([1, 2, 3]), (200, [1, 2, 3]))

    def test_second_init_is_403(self):
        r = self.ready(self.ECHO)
        self.assertEqual(r.init(self.ECHO),
                         (403, {"error": "Cannot initialize the action more than once."}))
        self.assertEqual(r.run({"x": 1}), (200, {"x": 1}))

    def test_run_before_init_is_403(self):
        r = self.start()
        self.assertEqual(r.run({"x": 1}), (403, {"error": "Cannot invoke an uninitialized action."}))

    def test_missing_code_is_403(self):
        r = self.start()
        missing = (403, {"error": "Missing main/no code to execute."})
        self.assertEqual(r.request("POST", "/init", {"value": {"main": "main"}}), missing)
        self.assertEqual(r.request("POST", "/init", {"value": {"code": ""}}), missing)
        self.assertEqual(r.request("POST", "/init", {}), missing)
        # not an init: a real one still works
        self.assertEqual(r.init(self.ECHO), (200, {"ok": True}))

    def test_throw_is_502_with_sentinels_after_output(self):
        r = self.ready(self.THROW)
        status, doc = r.run({"fail": True})
        self.assertEqual((status, doc), (502, {"error": "boom"}))
        self.assertIn("out-before-throw", r.out.segment(1))
        self.assertIn("err-before-throw", r.err.segment(1))
        # the runner survives and serves the next activation
        self.assertEqual(r.run({"fail": False}), (200, {"fine": True}))
        self.assertEqual(r.out.segment(2), [])

    def test_main_named_handler(self):
        r = self.ready(self.HANDLER, main="handler")
        self.assertEqual(r.run({"q": 1}), (200, {"handled": True, "args": {"q": 1}}))

    def test_init_env_visible(self):
        r = self.ready(self.ENV, env={"FOO": "bar", "__OW_API_KEY": "uuid:key"})
        self.assertEqual(r.run({}), (200, {"foo": "bar", "key": "uuid:key"}))

    def test_ow_vars_visible_during_run(self):
        r = self.ready(self.OWVARS)
        meta = {"namespace": "guest", "action_name": "/guest/hello", "action_version": "0.0.1",
                "activation_id": "act-1", "transaction_id": "tid-1",
                "deadline": "1700000060000", "api_key": "uuid:key"}
        expected = {"id": "act-1", "ns": "guest", "name": "/guest/hello", "ver": "0.0.1",
                    "tid": "tid-1", "deadline": "1700000060000", "api_key": "uuid:key"}
        self.assertEqual(r.run({}, **meta), (200, expected))
        meta["activation_id"] = "act-2"
        expected["id"] = "act-2"
        self.assertEqual(r.run({}, **meta), (200, expected))

    def test_non_dict_result_is_502_and_array_passes(self):
        r = self.ready(self.SELECT)
        not_dict = (502, {"error": "The action did not return a dictionary."})
        self.assertEqual(r.run({"v": 42}), not_dict)
        self.assertEqual(r.run({"v": "a string"}), not_dict)
        self.assertEqual(r.run({"v": None}), not_dict)
        self.assertEqual(r.run({"v": True}), not_dict)
        self.assertEqual(r.run({"v": [1, "two", {"three": 3}]}), (200, [1, "two", {"three": 3}]))
        self.assertEqual(r.run({"v": {"k": "v"}}), (200, {"k": "v"}))

    def test_unserializable_result_is_502(self):
        r = self.ready(self.CIRCULAR)
        status, doc = r.run({})
        self.assertEqual(status, 502)
        self.assertIsInstance(doc.get("error"), str)
        self.assertTrue(doc["error"])

    def test_syntax_error_init_is_502_with_sentinels(self):
        r = self.start()
        status, doc = r.init(self.SYNTAX)
        self.assertEqual(status, 502)
        self.assertTrue(doc["error"].startswith("Initialization has failed due to: "), doc)
        self.assertGreater(len(doc["error"]), len("Initialization has failed due to: "))
        r.out.segment(1)
        r.err.segment(1)
        self.assertEqual(r.run({}), (403, {"error": "Cannot invoke an uninitialized action."}))

    def test_main_not_a_function_is_502(self):
        r = self.start()
        status, doc = r.init(self.NOT_FUNC)
        self.assertEqual(status, 502)
        self.assertTrue(doc["error"].startswith("Initialization has failed due to: "), doc)
        r.out.segment(1)
        r.err.segment(1)

    def test_binary_zip_action(self):
        r = self.start()
        self.assertEqual(r.init(self.ZIP(), binary=True), (200, {"ok": True}))
        self.assertEqual(r.run({"a": 1}), (200, {"zipped": True, "helper": 42, "a": {"a": 1}}))

    def test_malformed_json_is_400_and_runner_alive(self):
        r = self.start()
        status, doc = r.request("POST", "/init", b'{"value": {"code": ')
        self.assertEqual(status, 400)
        self.assertIsInstance(doc.get("error"), str)
        self.assertEqual(r.init(self.ECHO), (200, {"ok": True}))
        status, doc = r.request("POST", "/run", b"not json at all")
        self.assertEqual(status, 400)
        self.assertEqual(r.run({"still": "alive"}), (200, {"still": "alive"}))

    def test_unknown_path_is_404(self):
        r = self.start()
        status, doc = r.request("POST", "/nope", {"value": {}})
        self.assertEqual(status, 404)
        self.assertIn("error", doc)
        status, doc = r.request("GET", "/init")
        self.assertEqual(status, 404)
        self.assertEqual(r.init(self.ECHO), (200, {"ok": True}))

    def test_twenty_requests_one_keepalive_connection(self):
        r = self.ready(self.ECHO)
        sock = r.conn.sock
        for i in range(20):
            self.assertEqual(r.run({"i": i}), (200, {"i": i}))
            self.assertIs(r.conn.sock, sock)
        for i in range(1, 21):
            self.assertEqual(r.out.segment(i), ["MARK-run"])

    def test_large_output_precedes_sentinel(self):
        r = self.ready(self.LARGE)
        self.assertEqual(r.run({}), (200, {"ok": True}))
        out = r.out.segment(1)
        self.assertEqual(len(out), 1001)
        self.assertEqual(out[-1], "LAST-OUT")
        err = r.err.segment(1)
        self.assertEqual(len(err), 301)
        self.assertEqual(err[-1], "LAST-ERR")

    def test_tcp_listener(self):
        r = self.start(tcp=True)
        self.assertEqual(r.init(self.ECHO), (200, {"ok": True}))
        sock = r.conn.sock
        for i in range(3):
            self.assertEqual(r.run({"tcp": i}), (200, {"tcp": i}))
        self.assertIs(r.conn.sock, sock)

    def test_sigterm_exits_cleanly_and_removes_stale_socket(self):
        r = self.start(stale_socket=True)
        self.assertEqual(r.init(self.ECHO), (200, {"ok": True}))
        self.assertEqual(r.run({}), (200, {}))
        self.assertEqual(r.stop(), 0)
        self.assertFalse(os.path.exists(r.sock_path))

    def _max_parallel(self, r):
        conns = [r.new_connection(), r.new_connection()]
        results = [None, None]

        def go(i):
            results[i] = r.run({}, conn=conns[i])

        threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        for c in conns:
            c.close()
        for res in results:
            self.assertIsNotNone(res)
            self.assertEqual(res[0], 200, res)
        return max(res[1]["max"] for res in results)

    def test_runs_are_serialized(self):
        r = self.ready(self.CONCURRENCY)
        self.assertEqual(self._max_parallel(r), 1)

    def test_concurrent_runs_when_allowed(self):
        r = self.start(env={"__OW_ALLOW_CONCURRENT": "true"})
        self.assertEqual(r.init(self.CONCURRENCY), (200, {"ok": True}))
        self.assertEqual(self._max_parallel(r), 2)


class NodeRunnerTests(RunnerTests, unittest.TestCase):
    CMD = ["node", NODE_RUNNER]
    ECHO = 'function main(args) { console.log("MARK-run"); return args; }'
    THROW = '''
function main(args) {
  if (!args.fail) return {fine: true};
  console.log("out-before-throw");
  console.error("err-before-throw");
  throw new Error("boom");
}'''
    HANDLER = 'function handler(args) { return {handled: true, args: args}; }'
    ENV = 'function main() { return {foo: process.env.FOO, key: process.env.__OW_API_KEY}; }'
    OWVARS = '''
function main() {
  const e = process.env;
  return {id: e.__OW_ACTIVATION_ID, ns: e.__OW_NAMESPACE, name: e.__OW_ACTION_NAME,
          ver: e.__OW_ACTION_VERSION, tid: e.__OW_TRANSACTION_ID, deadline: e.__OW_DEADLINE,
          api_key: e.__OW_API_KEY};
}'''
    SELECT = 'function main(a) { return a.v; }'
    CIRCULAR = 'function main() { const o = {}; o.self = o; return o; }'
    SYNTAX = 'function main( {'
    NOT_FUNC = 'var main = 5;'
    LARGE = '''
function main() {
  const line = "x".repeat(1000);
  for (let i = 0; i < 1000; i++) console.log(line);
  for (let i = 0; i < 300; i++) console.error(line);
  console.log("LAST-OUT");
  console.error("LAST-ERR");
  return {ok: true};
}'''
    CONCURRENCY = '''
let cur = 0, max = 0;
function main() {
  cur++; max = Math.max(max, cur);
  return new Promise(r => setTimeout(() => { cur--; r({max}); }, 200));
}'''

    @staticmethod
    def ZIP():
        return make_zip({
            "package.json": '{"name": "zipped", "main": "index.js"}',
            "index.js": 'const h = require("./lib/helper");\n'
                        'exports.main = function (a) { return {zipped: true, helper: h.x, a: a}; };\n',
            "lib/helper.js": "exports.x = 42;\n",
        }, stored=("lib/helper.js",))

    def test_promise_result(self):
        r = self.ready('''
function main(a) {
  return new Promise(resolve => setTimeout(() => {
    console.log("async-log");
    console.error("async-err");
    resolve({async: true, a: a});
  }, 20));
}''')
        self.assertEqual(r.run({"x": 1}), (200, {"async": True, "a": {"x": 1}}))
        self.assertEqual(r.out.segment(1), ["async-log"])
        self.assertEqual(r.err.segment(1), ["async-err"])

    def test_async_function_rejection(self):
        r = self.ready('async function main(a) { if (a.obj) throw {code: 7}; '
                       'if (a.str) return Promise.reject("just a string"); '
                       'throw new Error("async-boom"); }')
        self.assertEqual(r.run({}), (502, {"error": "async-boom"}))
        self.assertEqual(r.run({"obj": True}), (502, {"error": {"code": 7}}))
        self.assertEqual(r.run({"str": True}), (502, {"error": "just a string"}))

    def test_stray_async_exception_fails_activation_not_runner(self):
        r = self.ready('function main(a) { if (a.ok) return {ok: true}; '
                       'return new Promise(() => setTimeout(() => { throw new Error("stray"); }, 5)); }')
        self.assertEqual(r.run({}), (502, {"error": "stray"}))
        self.assertEqual(r.run({"ok": True}), (200, {"ok": True}))

    def test_exports_main(self):
        r = self.ready('exports.main = function (a) { return {form: "exports.main"}; };')
        self.assertEqual(r.run({}), (200, {"form": "exports.main"}))

    def test_module_exports_function(self):
        r = self.ready('module.exports = function (a) { return {form: "module.exports"}; };')
        self.assertEqual(r.run({}), (200, {"form": "module.exports"}))

    def test_module_exports_main(self):
        r = self.ready('module.exports.main = (a) => ({form: "module.exports.main"});')
        self.assertEqual(r.run({}), (200, {"form": "module.exports.main"}))

    def test_exports_named_handler(self):
        r = self.ready('exports.handler = async (a) => ({form: "exports.handler"});', main="handler")
        self.assertEqual(r.run({}), (200, {"form": "exports.handler"}))

    def test_require_builtin(self):
        r = self.ready('const os = require("os"); const path = require("node:path");\n'
                       'function main() { return {platform: os.platform(), base: path.basename("/a/b.js")}; }')
        self.assertEqual(r.run({}), (200, {"platform": "linux" if sys.platform.startswith("linux")
                                           else sys.platform, "base": "b.js"}))

    def test_syntax_error_message_included(self):
        r = self.start()
        status, doc = r.init('function main() { return 1 +; }')
        self.assertEqual(status, 502)
        self.assertEqual(doc, {"error": "Initialization has failed due to: Unexpected token ';'"})


class PythonRunnerTests(RunnerTests, unittest.TestCase):
    CMD = [sys.executable, PYTHON_RUNNER]  # deliberately without -u
    ECHO = 'def main(args):\n    print("MARK-run")\n    return args\n'
    THROW = '''
import sys
def main(args):
    if not args.get("fail"):
        return {"fine": True}
    print("out-before-throw")
    print("err-before-throw", file=sys.stderr)
    raise Exception("boom")
'''
    HANDLER = 'def handler(args):\n    return {"handled": True, "args": args}\n'
    ENV = 'import os\ndef main(a):\n    return {"foo": os.environ["FOO"], "key": os.environ["__OW_API_KEY"]}\n'
    OWVARS = '''
import os
def main(a):
    e = os.environ
    return {"id": e["__OW_ACTIVATION_ID"], "ns": e["__OW_NAMESPACE"], "name": e["__OW_ACTION_NAME"],
            "ver": e["__OW_ACTION_VERSION"], "tid": e["__OW_TRANSACTION_ID"],
            "deadline": e["__OW_DEADLINE"], "api_key": e["__OW_API_KEY"]}
'''
    SELECT = 'def main(a):\n    return a.get("v")\n'
    CIRCULAR = 'def main(a):\n    o = {}\n    o["self"] = o\n    return o\n'
    SYNTAX = 'def main(:\n    pass\n'
    NOT_FUNC = 'main = 5\n'
    LARGE = '''
import sys
def main(a):
    line = "x" * 1000
    for _ in range(1000):
        print(line)
    for _ in range(300):
        print(line, file=sys.stderr)
    print("LAST-OUT")
    print("LAST-ERR", file=sys.stderr)
    return {"ok": True}
'''
    CONCURRENCY = '''
import threading, time
lock = threading.Lock()
state = {"cur": 0, "max": 0}
def main(a):
    with lock:
        state["cur"] += 1
        state["max"] = max(state["max"], state["cur"])
    time.sleep(0.2)
    with lock:
        state["cur"] -= 1
        return {"max": state["max"]}
'''

    @staticmethod
    def ZIP():
        return make_zip({
            "__main__.py": "import helper\n"
                           "def main(a):\n    return {'zipped': True, 'helper': helper.X, 'a': a}\n",
            "helper.py": "X = 42\n",
        }, stored=("helper.py",))

    def test_traceback_on_stderr(self):
        r = self.ready(self.THROW)
        self.assertEqual(r.run({"fail": True}), (502, {"error": "boom"}))
        err = r.err.segment(1)
        self.assertIn("Traceback (most recent call last):", err)
        self.assertIn("Exception: boom", err)
        self.assertLess(err.index("err-before-throw"), err.index("Exception: boom"))

    def test_sys_exit_in_action_does_not_kill_runner(self):
        r = self.ready('import sys\ndef main(a):\n    if a.get("exit"):\n        sys.exit(3)\n'
                       '    return {"alive": True}\n')
        status, doc = r.run({"exit": True})
        self.assertEqual(status, 502)
        self.assertEqual(r.run({}), (200, {"alive": True}))


if __name__ == "__main__":
    timer = threading.Timer(WATCHDOG_S, _watchdog)
    timer.daemon = True
    timer.start()
    prog = unittest.main(exit=False)
    timer.cancel()
    sys.exit(0 if prog.result.wasSuccessful() else 1)
