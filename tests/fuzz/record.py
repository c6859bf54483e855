#!/usr/bin/python3
# record.py PORTFILE UPSTREAM OUTDIR - a recording reverse proxy for
# tests/fuzz/make-seeds.sh: listens on 127.0.0.1 (ephemeral port, written
# to PORTFILE as "port N"), forwards every GET and POST to UPSTREAM (the
# test CA's base URL, loopback only) and writes each reply to OUTDIR as
# NNN-OPERATION.http (status line, headers, body: the raw response) and
# NNN-OPERATION.body (the body alone).
import http.server, os, sys, urllib.error, urllib.parse, urllib.request

portfile, upstream, outdir = sys.argv[1:4]
count = [0]

class Rec(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def relay(self, body):
        q = urllib.parse.urlsplit(self.path).query
        op = urllib.parse.parse_qs(q).get("operation", ["none"])[0]
        req = urllib.request.Request(upstream + ("?" + q if q else ""), data=body,
                                     method=self.command)
        if body is not None:
            req.add_header("Content-Type", self.headers.get("Content-Type", ""))
        try:
            r = urllib.request.urlopen(req, timeout=30)
        except urllib.error.HTTPError as e:
            r = e
        data = r.read()
        count[0] += 1
        base = os.path.join(outdir, "%03d-%s" % (count[0], op))
        hdr = [(k, v) for k, v in r.headers.items()
               if k.lower() not in ("transfer-encoding", "connection")]
        with open(base + ".http", "wb") as f:
            f.write(("HTTP/1.1 %d %s\r\n" % (r.status, r.reason)).encode())
            for k, v in hdr:
                f.write(("%s: %s\r\n" % (k, v)).encode())
            f.write(b"\r\n" + data)
        with open(base + ".body", "wb") as f:
            f.write(data)
        self.send_response(r.status)
        for k, v in hdr:
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.relay(None)

    def do_POST(self):
        self.relay(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Rec)
with open(portfile + ".tmp", "w") as f:
    f.write("port %d\n" % srv.server_address[1])
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
