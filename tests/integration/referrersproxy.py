#!/usr/bin/env python3
"""referrersproxy.py - a loopback HTTP proxy in front of a docker-registry that
adds the distribution-spec 1.1 Referrers API, which Debian's registry (2.8)
lacks: manifest PUTs whose body has a "subject" are answered with an
OCI-Subject header and remembered; GET /v2/<name>/referrers/<digest> answers
an OCI index of them (?artifactType= filters, with OCI-Filters-Applied).
Everything else is forwarded as it is. Counts requests in --stats (JSON).

    referrersproxy.py --port P --upstream http://127.0.0.1:5000 --stats FILE
"""
import argparse
import hashlib
import http.client
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--upstream", required=True)
ap.add_argument("--stats", required=True)
args = ap.parse_args()
up = urllib.parse.urlsplit(args.upstream)

lock = threading.Lock()
referrers = {}  # (name, subject digest) -> [descriptor]
stats = {}

MANIFEST_RE = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")
REFERRERS_RE = re.compile(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})$")
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
       "proxy-authorization", "proxy-authenticate", "host"}


def count(key):
    with lock:
        stats[key] = stats.get(key, 0) + 1
        with open(args.stats, "w") as f:
            json.dump(stats, f)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        print("%s %s" % (self.command, self.path), flush=True)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, code, data, headers):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def forward(self, data, extra=()):
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=120)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        hdrs["Host"] = up.netloc
        if data or self.command in ("PUT", "POST", "PATCH"):
            hdrs["Content-Length"] = str(len(data))
        conn.request(self.command, self.path, body=data, headers=hdrs)
        resp = conn.getresponse()
        out = resp.read()
        headers = []
        for k, v in resp.getheaders():
            if k.lower() in HOP or k.lower() == "content-length":
                continue
            if k.lower() == "location" and v.startswith(args.upstream):
                v = v[len(args.upstream):]
            headers.append((k, v))
        headers.extend(extra)
        conn.close()
        return resp.status, out, headers

    def handle_any(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == "/referrersproxy/health":
            return self.reply(200, b"ok", [])
        m = REFERRERS_RE.match(path)
        if m and self.command == "GET":
            count("referrers_get")
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            with lock:
                lst = list(referrers.get((m.group(1), m.group(2)), []))
            headers = [("Content-Type", "application/vnd.oci.image.index.v1+json")]
            if "artifactType" in q:
                lst = [d for d in lst if d.get("artifactType") in q["artifactType"]]
                headers.append(("OCI-Filters-Applied", "artifactType"))
            idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": lst}
            return self.reply(200, json.dumps(idx).encode(), headers)
        data = self.body()
        m = MANIFEST_RE.match(path)
        extra = []
        subject = None
        if m and self.command == "PUT":
            try:
                doc = json.loads(data)
                subject = doc.get("subject")
            except ValueError:
                doc = None
            if subject:
                count("subject_put")
                extra.append(("OCI-Subject", subject["digest"]))
        code, out, headers = self.forward(data, extra if subject else ())
        if subject and code == 201:
            d = {"mediaType": doc.get("mediaType", self.headers.get("Content-Type")),
                 "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "size": len(data)}
            at = doc.get("artifactType") or doc.get("config", {}).get("mediaType")
            if at:
                d["artifactType"] = at
            if doc.get("annotations"):
                d["annotations"] = doc["annotations"]
            with lock:
                lst = referrers.setdefault((m.group(1), subject["digest"]), [])
                if all(x["digest"] != d["digest"] for x in lst):
                    lst.append(d)
        self.reply(code, out, headers)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = handle_any


with open(args.stats, "w") as f:
    json.dump(stats, f)
ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
