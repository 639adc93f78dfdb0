#!/usr/bin/env python3
"""Fault-injecting HTTP/1.1 reverse proxy for registry integration tests.

  faultproxy.py --upstream http://127.0.0.1:5000 [--port N] [--stats FILE]
                [faults...]

One request per connection: every answer carries "Connection: close", so a
client never reuses a connection the proxy has cut. Any method, request
bodies with Content-Length or chunked encoding, responses streamed through
(never held whole). Location headers that point at the upstream are
rewritten to point at the proxy.

Faults are counted, never random, so a test run is reproducible:
  --fail-every-nth CODE:N    every Nth request (1-based count of all
                             proxied requests) is answered CODE by the proxy
  --429 N                    the first N requests to /blobs/ or /manifests/
                             paths answer 429 with Retry-After: 1
  --drop-blob-after B:C      the first C GET /blobs/ responses larger than B
                             bytes: send the headers and B body bytes, then
                             reset the connection
  --drop-upload-after B:C[:S]  the first C PATCH/PUT /blobs/uploads/
                             requests with a body larger than B bytes (or
                             chunked), after skipping S such requests:
                             read B bytes of the body, then reset the
                             connection without answering; the upstream
                             never sees that request
  --corrupt-blob [C]         flip one byte (in the middle) of the body of
                             the first C (default: every) GET /blobs/ answer
  --delay-ms MS              wait MS before forwarding each request
  --upload-rate BPS          forward request bodies at most BPS bytes/s

Canned answers (checked first, no faults applied), for content a registry
would refuse to store (malformed or > 4 MiB manifests):
  --serve PATH FILE TYPE     GET/HEAD PATH answers 200 with FILE's bytes,
                             Content-Type TYPE, Docker-Content-Digest
  --reply PREFIX CODE        any request whose path starts with PREFIX is
                             answered CODE with a registry error body

The stats file (JSON, rewritten atomically after every request) holds
"requests" plus one counter per fault kind: "fail_every_nth", "429",
"drop_blob", "drop_upload", "corrupt_blob", and "status" (answers by code).
GET /faultproxy/health answers 200 without counting. The first line on
stdout is the port. Each request is logged to stderr. Standard library only.
"""
import argparse
import hashlib
import http.client
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection",
              "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "expect"}
CHUNK = 64 * 1024
REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout", 200: "OK", 408: "Request Timeout"}


class Abort(Exception):
    """Reset the client connection now."""


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.skipped = {}
        self.stats = {"requests": 0, "fail_every_nth": 0, "429": 0,
                      "drop_blob": 0, "drop_upload": 0, "corrupt_blob": 0,
                      "upstream_errors": 0, "status": {}}
        self.write_stats()

    def write_stats(self):
        if not self.args.stats:
            return
        tmp = f"{self.args.stats}.{threading.get_ident()}.tmp"
        with open(tmp, "w") as f:
            json.dump(self.stats, f, sort_keys=True)
        os.replace(tmp, self.args.stats)

    def bump(self, key, n=1):
        with self.lock:
            self.stats[key] += n
            self.write_stats()

    def status(self, code):
        with self.lock:
            st = self.stats["status"]
            st[str(code)] = st.get(str(code), 0) + 1
            self.write_stats()

    def take(self, key, limit, skip=0):
        """Counts one fault of KEY if fewer than LIMIT happened (limit < 0:
        no limit), after SKIP eligible requests went through untouched.
        Returns whether the fault is to be injected."""
        with self.lock:
            if skip:
                seen = self.skipped.get(key, 0)
                if seen < skip:
                    self.skipped[key] = seen + 1
                    return False
            if 0 <= limit <= self.stats[key]:
                return False
            self.stats[key] += 1
            self.write_stats()
            return True


def log(msg):
    sys.stderr.write(time.strftime("%H:%M:%S ") + msg + "\n")
    sys.stderr.flush()


def reset(sock):
    """Abrupt close: RST instead of FIN, like a dropped connection."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Request:
    def __init__(self, rfile):
        line = rfile.readline(65537)
        if not line:
            raise EOFError
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3:
            raise ValueError(f"bad request line {line!r}")
        self.method, self.target, self.version = parts
        self.headers = []
        while True:
            h = rfile.readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            self.headers.append((name.strip(), value.strip()))
        self.rfile = rfile
        te = self.get("transfer-encoding") or ""
        self.chunked = "chunked" in te.lower()
        cl = self.get("content-length")
        self.length = int(cl) if cl is not None and not self.chunked else None
        self.has_body = self.chunked or (self.length or 0) > 0
        self.path = urlsplit(self.target).path

    def get(self, name):
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def body_chunks(self):
        """Yields the request body in pieces (de-chunked)."""
        if self.chunked:
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise EOFError("client closed inside a chunked body")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    b = self.rfile.read(min(left, CHUNK))
                    if not b:
                        raise EOFError("client closed inside a chunk")
                    left -= len(b)
                    yield b
                self.rfile.readline(16)
        else:
            left = self.length or 0
            while left:
                b = self.rfile.read(min(left, CHUNK))
                if not b:
                    raise EOFError("client closed inside the body")
                left -= len(b)
                yield b

    def drain(self):
        for _ in self.body_chunks():
            pass


class Handler(socketserver.BaseRequestHandler):
    def send(self, data):
        self.request.sendall(data)

    def simple(self, code, body=b"", extra=()):
        hdr = [f"HTTP/1.1 {code} {REASONS.get(code, 'Error')}",
               "Content-Type: application/json",
               f"Content-Length: {len(body)}", "Connection: close"]
        hdr += [f"{k}: {v}" for k, v in extra]
        self.send(("\r\n".join(hdr) + "\r\n\r\n").encode("latin-1") + body)

    def handle(self):
        st = self.server.state
        args = st.args
        sock = self.request
        # A TLS ClientHello (a client probing for https) gets what Go's
        # net/http answers, at once, instead of a hang in readline().
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b"\x16":
            self.send(b"HTTP/1.0 400 Bad Request\r\n\r\n"
                      b"Client sent an HTTP request to an HTTPS server.\n")
            log("TLS handshake on the plain HTTP port -> 400")
            return
        rfile = sock.makefile("rb")
        try:
            req = Request(rfile)
        except (EOFError, ValueError, OSError):
            self.simple(400, b'{"errors":[{"code":"BAD_REQUEST"}]}')
            return
        if req.path == "/faultproxy/health":
            self.simple(200, b"{}")
            return
        if self.canned(req):
            return
        with st.lock:
            st.stats["requests"] += 1
            n = st.stats["requests"]
            st.write_stats()
        expect = (req.get("expect") or "").lower() == "100-continue"
        is_blob = "/blobs/" in req.path
        is_manifest = "/manifests/" in req.path
        try:
            # Faults the proxy answers itself. With Expect: 100-continue
            # the client has not sent the body yet and will not.
            if args.fail_every_nth and n % args.fail_every_nth[1] == 0:
                st.bump("fail_every_nth")
                code = args.fail_every_nth[0]
                if not expect:
                    req.drain()
                body = json.dumps({"errors": [{
                    "code": "UNAVAILABLE",
                    "message": f"faultproxy: injected {code}"}]}).encode()
                self.simple(code, body)
                st.status(code)
                log(f"#{n} {req.method} {req.target} -> {code} (fail-every-nth)")
                return
            if args.too_many and (is_blob or is_manifest) and \
                    st.take("429", args.too_many):
                if not expect:
                    req.drain()
                body = json.dumps({"errors": [{
                    "code": "TOOMANYREQUESTS",
                    "message": "faultproxy: injected 429"}]}).encode()
                self.simple(429, body, [("Retry-After", "1")])
                st.status(429)
                log(f"#{n} {req.method} {req.target} -> 429")
                return
            if args.drop_upload_after and req.method in ("PATCH", "PUT") \
                    and "/blobs/uploads/" in req.path and \
                    (req.chunked or (req.length or 0) > args.drop_upload_after[0]) \
                    and st.take("drop_upload", args.drop_upload_after[1],
                                args.drop_upload_after[2]):
                if expect:
                    self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                want = args.drop_upload_after[0]
                got = 0
                for b in req.body_chunks():
                    got += len(b)
                    if got >= want:
                        break
                log(f"#{n} {req.method} {req.target} -> dropped after "
                    f"{got} body bytes (drop-upload-after)")
                raise Abort()
            if args.delay_ms:
                time.sleep(args.delay_ms / 1000.0)
            if expect:
                self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.forward(req, n)
        except Abort:
            rfile.close()
            reset(sock)
        except (BrokenPipeError, ConnectionResetError, EOFError) as e:
            log(f"#{n} {req.method} {req.target}: client went away: {e}")
        finally:
            try:
                rfile.close()
            except OSError:
                pass

    def canned(self, req):
        args = self.server.state.args
        for path, fname, ctype in args.serve:
            if req.path == path and req.method in ("GET", "HEAD"):
                with open(fname, "rb") as f:
                    body = f.read()
                digest = "sha256:" + hashlib.sha256(body).hexdigest()
                hdr = ["HTTP/1.1 200 OK", f"Content-Type: {ctype}",
                       f"Content-Length: {len(body)}",
                       f"Docker-Content-Digest: {digest}",
                       "Docker-Distribution-Api-Version: registry/2.0",
                       "Connection: close"]
                self.send(("\r\n".join(hdr) + "\r\n\r\n").encode("latin-1") +
                          (b"" if req.method == "HEAD" else body))
                self.server.state.status(200)
                log(f"{req.method} {req.target} -> 200 (served {fname})")
                return True
        for prefix, code in args.reply:
            if req.path.startswith(prefix):
                req.drain()
                ecode = {400: "DIGEST_INVALID", 401: "UNAUTHORIZED", 403: "DENIED",
                         404: "NAME_UNKNOWN"}.get(int(code), "UNKNOWN")
                body = json.dumps({"errors": [{
                    "code": ecode,
                    "message": f"faultproxy: canned {code}"}]}).encode()
                extra = [("WWW-Authenticate", 'Basic realm="faultproxy"')] \
                    if int(code) == 401 else []
                self.simple(int(code), body, extra)
                self.server.state.status(int(code))
                log(f"{req.method} {req.target} -> {code} (reply)")
                return True
        return False

    def forward(self, req, n):
        st = self.server.state
        args = st.args
        up = args.upstream_parts
        if up.scheme == "https":
            ctx = ssl.create_default_context(cafile=args.upstream_ca)
            conn = http.client.HTTPSConnection(up.netloc, timeout=300,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection(up.netloc, timeout=300)
        try:
            conn.putrequest(req.method, req.target, skip_host=True,
                            skip_accept_encoding=True)
            conn.putheader("Host", up.netloc)
            for k, v in req.headers:
                if k.lower() in HOP_BY_HOP or k.lower() in ("host",
                                                            "content-length"):
                    continue
                conn.putheader(k, v)
            if req.chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif req.length is not None:
                conn.putheader("Content-Length", str(req.length))
            conn.putheader("Connection", "close")
            conn.endheaders()
            t0 = time.monotonic()
            sent = 0
            for b in req.body_chunks():
                conn.send(b"%x\r\n%s\r\n" % (len(b), b) if req.chunked else b)
                sent += len(b)
                if args.upload_rate:
                    ahead = sent / args.upload_rate - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
            if req.chunked:
                conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            st.bump("upstream_errors")
            log(f"#{n} {req.method} {req.target}: upstream error: {e}")
            self.simple(502, json.dumps({"errors": [{
                "code": "UNAVAILABLE",
                "message": f"faultproxy: upstream: {e}"}]}).encode())
            st.status(502)
            return
        try:
            self.relay(req, resp, n)
        finally:
            conn.close()

    def relay(self, req, resp, n):
        st = self.server.state
        args = st.args
        client_host = req.get("host") or self.server.public
        headers = []
        length = None
        for k, v in resp.getheaders():
            kl = k.lower()
            if kl in HOP_BY_HOP:
                continue
            if kl == "location":
                for base in self.server.upstream_bases:
                    if v.startswith(base):
                        v = "http://" + client_host + v[len(base):]
                        break
            if kl == "content-length":
                length = int(v)
            headers.append((k, v))
        no_body = (req.method == "HEAD" or resp.status in (204, 304)
                   or 100 <= resp.status < 200)
        rechunk = not no_body and length is None
        if rechunk:
            headers.append(("Transfer-Encoding", "chunked"))
        headers.append(("Connection", "close"))

        blob_get = req.method == "GET" and "/blobs/" in req.path and \
            resp.status in (200, 206)
        drop_at = None
        if blob_get and args.drop_blob_after and length is not None and \
                length > args.drop_blob_after[0] and \
                st.take("drop_blob", args.drop_blob_after[1]):
            drop_at = args.drop_blob_after[0]
        flip_at = None
        if blob_get and args.corrupt_blob is not None and \
                (length or 0) > 0 and st.take("corrupt_blob", args.corrupt_blob):
            flip_at = length // 2

        head = [f"HTTP/1.1 {resp.status} {resp.reason}"]
        head += [f"{k}: {v}" for k, v in headers]
        self.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        st.status(resp.status)
        note = ""
        if drop_at is not None:
            note = f" (drop-blob-after {drop_at})"
        elif flip_at is not None:
            note = f" (corrupt byte {flip_at})"
        log(f"#{n} {req.method} {req.target} -> {resp.status}"
            f" len={length}{note}")
        if no_body:
            return
        off = 0
        while True:
            b = resp.read(CHUNK)
            if not b:
                break
            if flip_at is not None and off <= flip_at < off + len(b):
                i = flip_at - off
                b = b[:i] + bytes([b[i] ^ 0xFF]) + b[i + 1:]
            if drop_at is not None and off + len(b) >= drop_at:
                self.send(b[:drop_at - off])
                raise Abort()
            self.send(b"%x\r\n%s\r\n" % (len(b), b) if rechunk else b)
            off += len(b)
        if rechunk:
            self.send(b"0\r\n\r\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128


def parse_pair(text, what):
    a, sep, b = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(a), int(b)
    except ValueError:
        raise SystemExit(f"faultproxy: {what} wants A:B numbers, got '{text}'")


def main():
    ap = argparse.ArgumentParser(
        description="fault-injecting HTTP/1.1 reverse proxy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__)
    ap.add_argument("--upstream", required=True,
                    help="http://HOST:PORT or https://HOST:PORT")
    ap.add_argument("--upstream-ca", help="CA file for an https upstream")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--stats", help="JSON counters, rewritten on each request")
    ap.add_argument("--fail-every-nth", metavar="CODE:N")
    ap.add_argument("--429", dest="too_many", type=int, default=0,
                    metavar="N")
    ap.add_argument("--drop-blob-after", metavar="BYTES:COUNT")
    ap.add_argument("--drop-upload-after", metavar="BYTES:COUNT")
    ap.add_argument("--corrupt-blob", nargs="?", type=int, const=-1,
                    default=None, metavar="COUNT")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--upload-rate", type=int, default=0, metavar="BPS")
    ap.add_argument("--serve", nargs=3, action="append", default=[],
                    metavar=("PATH", "FILE", "TYPE"))
    ap.add_argument("--reply", nargs=2, action="append", default=[],
                    metavar=("PREFIX", "CODE"))
    args = ap.parse_args()

    if args.fail_every_nth:
        args.fail_every_nth = parse_pair(args.fail_every_nth, "--fail-every-nth")
        if args.fail_every_nth[1] < 1:
            raise SystemExit("faultproxy: --fail-every-nth N must be >= 1")
    if args.drop_blob_after:
        args.drop_blob_after = parse_pair(args.drop_blob_after,
                                          "--drop-blob-after")
    if args.drop_upload_after:
        parts = args.drop_upload_after.split(":")
        skip = 0
        if len(parts) == 3:
            skip = parse_pair(parts[2] + ":0", "--drop-upload-after")[0]
        args.drop_upload_after = parse_pair(":".join(parts[:2]),
                                            "--drop-upload-after") + (skip,)
    args.upstream_parts = urlsplit(args.upstream)
    if args.upstream_parts.scheme not in ("http", "https") or \
            not args.upstream_parts.netloc:
        raise SystemExit(f"faultproxy: bad --upstream '{args.upstream}'")

    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(args)
    port = srv.server_address[1]
    srv.public = f"127.0.0.1:{port}"
    net = args.upstream_parts.netloc
    bases = {f"{args.upstream_parts.scheme}://{net}"}
    if net.startswith("127.0.0.1:"):
        bases.add(f"{args.upstream_parts.scheme}://localhost:{net.split(':')[1]}")
    srv.upstream_bases = sorted(bases)
    print(port, flush=True)
    log(f"listening on 127.0.0.1:{port}, upstream {args.upstream}")
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
