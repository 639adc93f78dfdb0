#!/usr/bin/env python3
"""Bearer token issuer for integration tests (docker distribution token auth).

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]
  - scopes may be repeated and/or space separated inside one parameter
  - Basic auth is checked against --users (lines "user:sha256hex(password)");
    bad credentials answer 401, no credentials means the anonymous account
  - grants: a known user gets pull,push (and *) on every repository;
    anonymous gets pull on repositories under public/; nothing else
  - the JWT is RS256, signed by `openssl dgst -sha256 -sign KEY`, with the
    signing certificate in the header's x5c array: docker-registry 2.8 checks
    that chain against its rootcertbundle

Each request appends one JSON line to --log (never credentials or tokens) so
tests can count token fetches and check the scopes asked for.
Standard library only.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_users(path):
    users = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, digest = line.partition(":")
            users[name] = digest.strip().lower()
    return users


def parse_scope(text):
    """'repository:a/b:pull,push' -> ('repository', 'a/b', ['pull', 'push']).
    The name may itself contain ':' (host:port prefixes are not used here,
    but the type is first and the actions are after the last colon)."""
    typ, sep, rest = text.partition(":")
    if not sep:
        return None
    name, sep, actions = rest.rpartition(":")
    if not sep or not name:
        return None
    return typ, name, [a for a in actions.split(",") if a]


def allowed_actions(account, typ, name):
    if typ != "repository":
        return set()
    if account is not None:
        return {"pull", "push", "*"}
    if name.startswith("public/"):
        return {"pull"}
    return set()


class State:
    def __init__(self, args):
        self.args = args
        self.users = load_users(args.users)
        with open(args.cert, "rb") as f:
            pem = f.read().decode("ascii")
        body = "".join(l for l in pem.splitlines()
                       if l and not l.startswith("-----"))
        self.x5c = [body]  # already base64 DER
        self.lock = threading.Lock()
        self.count = 0

    def sign(self, signing_input):
        out = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.args.key],
            input=signing_input, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, check=False)
        if out.returncode != 0:
            raise RuntimeError("openssl dgst -sign failed: " +
                               out.stderr.decode(errors="replace"))
        return out.stdout

    def log(self, entry):
        if not self.args.log:
            return
        with self.lock:
            self.count += 1
            entry["n"] = self.count
            with open(self.args.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "plait-test-tokenserver/1"

    def log_message(self, fmt, *args):  # quiet; our own log is the file
        pass

    def reply(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def authenticate(self):
        """Returns (ok, account). account None = anonymous."""
        st = self.server.state
        hdr = self.headers.get("Authorization")
        if not hdr:
            return True, None
        kind, _, cred = hdr.partition(" ")
        if kind.lower() != "basic":
            return False, None
        try:
            user, sep, password = base64.b64decode(cred.strip()).decode(
                "utf-8").partition(":")
        except Exception:
            return False, None
        if not sep or user not in st.users:
            return False, user or None
        got = hashlib.sha256(password.encode("utf-8")).hexdigest()
        if not hmac.compare_digest(got, st.users[user]):
            return False, user
        return True, user

    def do_GET(self):
        st = self.server.state
        url = urlsplit(self.path)
        entry = {"time": round(time.time(), 3), "method": "GET",
                 "path": url.path}
        if url.path != "/token":
            # not logged: readiness probes would skew the counts
            self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})
            return
        q = parse_qs(url.query, keep_blank_values=True)
        service = (q.get("service") or [""])[0]
        scopes = []
        for s in q.get("scope", []):
            scopes.extend(x for x in s.split(" ") if x)
        ok, account = self.authenticate()
        entry.update({"service": service, "scopes": scopes,
                      "account": account if account else "",
                      "client_id": (q.get("client_id") or [""])[0],
                      "offline_token": (q.get("offline_token") or [""])[0]})
        if not ok:
            entry["status"] = 401
            st.log(entry)
            self.reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                         "message": "invalid credentials"}]},
                       {"WWW-Authenticate": 'Basic realm="plait-test"'})
            return
        if st.args.service and service != st.args.service:
            entry["status"] = 400
            st.log(entry)
            self.reply(400, {"errors": [{"code": "INVALID_SERVICE",
                                         "message": "unknown service"}]})
            return
        access = []
        for s in scopes:
            p = parse_scope(s)
            if p is None:
                continue
            typ, name, actions = p
            allowed = allowed_actions(account, typ, name)
            granted = [a for a in actions if a in allowed]
            # docker's token servers merge repeated scopes for one name
            for a in access:
                if a["type"] == typ and a["name"] == name:
                    a["actions"].extend(x for x in granted
                                        if x not in a["actions"])
                    break
            else:
                access.append({"type": typ, "name": name,
                               "actions": granted})
        now = int(time.time())
        lifetime = st.args.lifetime
        claims = {
            "iss": st.args.issuer,
            "sub": account or "",
            "aud": service,
            "exp": now + lifetime,
            "nbf": now - 1,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": st.x5c}
        signing_input = (b64url(json.dumps(header, separators=(",", ":"))
                                .encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":"))
                                .encode())).encode("ascii")
        try:
            sig = st.sign(signing_input)
        except RuntimeError as e:
            entry["status"] = 500
            st.log(entry)
            self.reply(500, {"errors": [{"code": "INTERNAL",
                                         "message": str(e)}]})
            return
        token = signing_input.decode("ascii") + "." + b64url(sig)
        entry["status"] = 200
        entry["granted"] = access
        entry["lifetime"] = lifetime
        st.log(entry)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        self.reply(200, {"token": token, "access_token": token,
                         "expires_in": lifetime, "issued_at": issued})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here")
    ap.add_argument("--key", required=True, help="PEM private key (RSA)")
    ap.add_argument("--cert", required=True,
                    help="PEM certificate of --key, sent as x5c")
    ap.add_argument("--users", required=True,
                    help="file of user:sha256hex(password) lines")
    ap.add_argument("--issuer", default="plait-test-issuer")
    ap.add_argument("--service", default="plait-test",
                    help="expected service ('' accepts any)")
    ap.add_argument("--lifetime", type=int, default=300,
                    help="token lifetime in seconds (expires_in)")
    ap.add_argument("--log", help="append one JSON line per request here")
    args = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, args.port_file)
    print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
