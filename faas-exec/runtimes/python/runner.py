#!/usr/bin/env python3
"""OpenWhisk-compatible action runner for Python (standard library only).

Speaks the OpenWhisk action-proxy protocol (POST /init, POST /run) over
HTTP/1.1 keep-alive. Listens on $__OW_LISTEN ("unix:/path" or
"tcp:HOST:PORT"), default tcp 0.0.0.0:8080. See ../README.md.
"""
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"

BODY_OK = b'{"ok":true}'
BODY_REINIT = b'{"error":"Cannot initialize the action more than once."}'
BODY_MISSING = b'{"error":"Missing main/no code to execute."}'
BODY_UNINIT = b'{"error":"Cannot invoke an uninitialized action."}'
BODY_NOT_DICT = b'{"error":"The action did not return a dictionary."}'
BODY_NOT_FOUND = b'{"error":"Not found."}'
BODY_NOT_OBJECT = b'{"error":"The request body must be a JSON object."}'

REASONS = {
    200: b"OK",
    400: b"Bad Request",
    403: b"Forbidden",
    404: b"Not Found",
    502: b"Bad Gateway",
}


class State:
    fn = None  # the initialized entry point
    init_lock = threading.Lock()
    run_lock = threading.Lock()
    concurrent = os.environ.get("__OW_ALLOW_CONCURRENT") == "true"
    tmpdirs = []
    runner_module = sys.modules[__name__]  # keep alive if __main__ is replaced


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


def exc_message(e):
    return str(e) or e.__class__.__name__


def write_sentinels():
    """Flush everything the action printed, then the sentinel, on both streams."""
    for cur, orig in ((sys.stdout, sys.__stdout__), (sys.stderr, sys.__stderr__)):
        if cur is not None and cur is not orig:
            try:
                cur.flush()
            except Exception:
                pass
        if orig is not None:
            try:
                orig.write(SENTINEL)
                orig.flush()
            except Exception:
                pass


# ------------------------------------------------------------------ loading

def resolve(namespace, main):
    parts = main.split(".")
    obj = namespace.get(parts[0])
    for p in parts[1:]:
        obj = getattr(obj, p, None)
    if not callable(obj):
        raise Exception("Action entrypoint '%s' is not a function." % main)
    return obj


def exec_module(source, filename):
    import types
    mod = types.ModuleType("__main__")
    mod.__file__ = filename
    sys.modules["__main__"] = mod  # so pickle & co. find the action's classes
    exec(compile(source, filename, "exec"), mod.__dict__)
    return mod.__dict__


def load_source(code, main):
    return resolve(exec_module(code, "__main__.py"), main)


def load_zip(code, main):
    import base64
    import glob
    import io
    import site
    import tempfile
    import zipfile
    data = base64.b64decode(code)
    d = tempfile.mkdtemp(prefix="faas-action-")
    State.tmpdirs.append(d)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(d)
    entry = os.path.join(d, "__main__.py")
    if not os.path.isfile(entry):
        raise Exception("Zip file does not include __main__.py")
    # OpenWhisk convention: a bundled virtualenv/ directory provides packages.
    for sp in glob.glob(os.path.join(d, "virtualenv", "lib", "python*", "site-packages")):
        site.addsitedir(sp)
    sys.path.insert(0, d)
    os.chdir(d)
    with open(entry, "rb") as f:
        source = f.read()
    return resolve(exec_module(source, entry), main)


# ------------------------------------------------------------------ handlers

def invoke(fn, msg):
    """Run one activation; returns (status, body). Writes the sentinels."""
    environ = os.environ
    for k, v in msg.items():
        if k != "value" and v.__class__ is str:
            try:
                environ["__OW_" + k.upper()] = v
            except ValueError:
                pass
    value = msg.get("value")
    if value is None:
        value = {}
    try:
        result = fn(value)
    except BaseException as e:  # the runner never dies because of the action
        try:
            traceback.print_exc()
        except BaseException:
            pass
        status, body = 502, dumps({"error": exc_message(e)})
    else:
        if isinstance(result, (dict, list)):
            try:
                status, body = 200, dumps(result)
            except BaseException as e:
                status, body = 502, dumps({"error": "The action returned a result that is not JSON serializable: %s" % exc_message(e)})
        else:
            status, body = 502, BODY_NOT_DICT
    write_sentinels()
    return status, body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = False  # True in the TCP subclass

    def log_message(self, format, *args):
        pass

    def reply(self, status, body):
        head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
            status, REASONS[status], len(body))
        if self.close_connection:
            head += b"Connection: close\r\n"
        # One write == one send: headers and body leave together.
        self.wfile.write(head + b"\r\n" + body)
        self.wfile.flush()

    def read_body(self):
        te = self.headers.get("Transfer-Encoding")
        if te is not None and te.strip().lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        n = self.headers.get("Content-Length")
        if not n:
            return b""
        n = int(n)
        if n < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(n)

    def do_POST(self):
        try:
            body = self.read_body()
        except Exception:
            self.close_connection = True
            return self.reply(400, b'{"error":"Malformed request body."}')
        path = self.path
        if path != "/run" and path != "/init":
            return self.reply(404, BODY_NOT_FOUND)
        try:
            msg = json.loads(body)
        except ValueError as e:
            return self.reply(400, dumps({"error": "Malformed JSON request body: %s" % e}))
        if path == "/run":
            self.do_run(msg)
        else:
            self.do_init(msg)

    def do_other(self):
        try:
            self.read_body()
        except Exception:
            self.close_connection = True
        self.reply(404, BODY_NOT_FOUND)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_other

    def do_init(self, msg):
        with State.init_lock:
            if State.fn is not None:
                return self.reply(403, BODY_REINIT)
            value = msg.get("value") if isinstance(msg, dict) else None
            if not isinstance(value, dict):
                value = {}
            code = value.get("code")
            main = value.get("main") or "main"
            if not isinstance(code, str) or not code or not isinstance(main, str):
                return self.reply(403, BODY_MISSING)
            try:
                env = value.get("env")
                if isinstance(env, dict):
                    for k, v in env.items():
                        os.environ[str(k)] = v if isinstance(v, str) else json.dumps(v)
                State.concurrent = os.environ.get("__OW_ALLOW_CONCURRENT") == "true"
                if value.get("binary"):
                    fn = load_zip(code, main)
                else:
                    fn = load_source(code, main)
            except BaseException as e:
                try:
                    traceback.print_exc()
                except BaseException:
                    pass
                write_sentinels()
                return self.reply(502, dumps({"error": "Initialization has failed due to: %s" % exc_message(e)}))
            State.fn = fn
            self.reply(200, BODY_OK)

    def do_run(self, msg):
        fn = State.fn
        if fn is None:
            return self.reply(403, BODY_UNINIT)
        if not isinstance(msg, dict):
            return self.reply(400, BODY_NOT_OBJECT)
        if State.concurrent:
            status, body = invoke(fn, msg)
        else:
            with State.run_lock:
                status, body = invoke(fn, msg)
        self.reply(status, body)


class TCPHandler(Handler):
    disable_nagle_algorithm = True  # TCP_NODELAY


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128


class TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def terminate(signum, frame):
    raise SystemExit(0)


def main():
    listen = os.environ.get("__OW_LISTEN") or "tcp:0.0.0.0:8080"
    unix_path = None
    if listen.startswith("unix:"):
        unix_path = listen[5:]
        try:
            os.unlink(unix_path)
        except FileNotFoundError:
            pass
        server = UnixServer(unix_path, Handler)
    elif listen.startswith("tcp:"):
        host, _, port = listen[4:].rpartition(":")
        host = host.strip("[]") or "0.0.0.0"

        class Server(TCPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

        server = Server((host, int(port)), TCPHandler)
    else:
        sys.stderr.write("runner: unsupported __OW_LISTEN value: %s\n" % listen)
        sys.exit(2)
    signal.signal(signal.SIGTERM, terminate)
    if os.environ.get("__OW_EXIT_WITH_PARENT") == "1":
        # Started by the platform as a child process: exit when the platform goes away, even
        # if it was killed without a chance to stop us (we are re-parented then).
        parent = os.getppid()

        def watch_parent():
            while True:
                time.sleep(1)
                if os.getppid() != parent:
                    if unix_path is not None:
                        try:
                            os.unlink(unix_path)
                        except OSError:
                            pass
                    os._exit(0)

        threading.Thread(target=watch_parent, daemon=True).start()
    try:
        server.serve_forever(poll_interval=3600)
    except KeyboardInterrupt:
        pass
    finally:
        if unix_path is not None:
            try:
                os.unlink(unix_path)
            except OSError:
                pass
        if State.tmpdirs:
            import shutil
            for d in State.tmpdirs:
                shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
