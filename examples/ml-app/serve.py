#!/usr/bin/env python3
"""Answer predictions of the model train.py wrote.

A request is a JSON object {"x": [f1, f2, f3, f4]}; the answer is
{"label": 0|1, "probability": P(label 1)} or {"error": "..."}.

  serve.py --model model.json --stdin          one request per line on stdin,
                                               one answer per line on stdout
  serve.py --model model.json --http HOST:PORT POST /predict, GET /healthz
"""
import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


class Model:
    def __init__(self, path):
        with open(path) as f:
            m = json.load(f)
        if m.get("kind") != "logistic-regression":
            raise ValueError("%s: not a model written by train.py" % path)
        self.w = np.array(m["weights"], dtype=np.float64)
        self.b = float(m["bias"])
        self.mean = np.array(m["mean"], dtype=np.float64)
        self.std = np.array(m["std"], dtype=np.float64)

    def predict(self, request):
        """The answer to one request (a dict); errors are answers too."""
        x = request.get("x") if isinstance(request, dict) else None
        if not isinstance(x, list) or len(x) != self.w.size or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
            return {"error": "request needs \"x\": a list of %d numbers" % self.w.size}
        z = ((np.array(x, dtype=np.float64) - self.mean) / self.std) @ self.w + self.b
        p = float(1.0 / (1.0 + np.exp(-z)))
        return {"label": int(p > 0.5), "probability": round(p, 4)}


def answer_line(model, line):
    try:
        req = json.loads(line)
    except ValueError as e:
        return {"error": "invalid JSON: %s" % e}
    return model.predict(req)


def serve_stdin(model):
    for line in sys.stdin:
        if not line.strip():
            continue
        sys.stdout.write(json.dumps(answer_line(model, line), sort_keys=True) + "\n")
        sys.stdout.flush()
    return 0


def serve_http(model, addr):
    host, _, port = addr.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, obj):
            body = (json.dumps(obj, sort_keys=True) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/healthz":
                self.reply(200, {"status": "ok"})
            else:
                self.reply(404, {"error": "not found: GET /healthz or POST /predict"})

        def do_POST(self):
            if self.path != "/predict":
                self.reply(404, {"error": "not found: POST /predict"})
                return
            n = int(self.headers.get("Content-Length") or 0)
            ans = answer_line(model, self.rfile.read(n).decode("utf-8", "replace"))
            self.reply(400 if "error" in ans else 200, ans)

    srv = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    print("serving on http://%s:%s (POST /predict)" % (host or "0.0.0.0", port), file=sys.stderr)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="model.json")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--stdin", action="store_true", help="answer JSON lines from stdin")
    mode.add_argument("--http", metavar="HOST:PORT", help="serve over HTTP (default 0.0.0.0:8080)")
    a = ap.parse_args(argv)
    try:
        model = Model(a.model)
    except (OSError, ValueError, KeyError) as e:
        print("serve.py: cannot load the model: %s" % e, file=sys.stderr)
        return 1
    if a.stdin:
        return serve_stdin(model)
    return serve_http(model, a.http or "0.0.0.0:8080")


if __name__ == "__main__":
    sys.exit(main())
