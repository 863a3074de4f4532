#!/usr/bin/env python3
"""Replays a corpus of hostile request headers against every front end of a davit server.

Usage: replay_headers.py URL USER PASSWORD CORPUS

Each "Name: value" line of CORPUS (format in its header comment) is sent, on its own
connection, with a WebDAV PUT, PROPFIND, LOCK, COPY, MOVE and GET below /dav/, a REST GET and
PUT, an S3 GET and PUT (signed with SigV4 by a key made for the run) and a WebDAV PUT through
an upload link. Every request must be answered (no dropped connection, no timeout) with a
status below 500. Prints a summary; exits non-zero on any failure. Python standard library
only.
"""

import base64
import datetime
import hashlib
import hmac
import http.client
import json
import re
import sys
import urllib.parse

LOCK_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
    b"</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>replay</D:owner></D:lockinfo>"
)
TIMEOUT = 30


def read_corpus(path):
    """(name, value bytes, line number) of every entry; \\xHH and \\\\ decoded."""
    entries = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f.read().split(b"\n"), 1):
            line = raw.rstrip(b"\r")
            if not line.strip() or line.startswith(b"#"):
                continue
            name, sep, value = line.partition(b":")
            if not sep or not name.strip():
                sys.exit(f"{path}:{number}: not a 'Name: value' line")
            if value.startswith(b" "):
                value = value[1:]
            value = re.sub(
                rb"\\(x[0-9a-fA-F]{2}|\\)",
                lambda m: b"\\" if m.group(1) == b"\\" else bytes([int(m.group(1)[1:], 16)]),
                value,
            )
            entries.append((name.strip().decode("ascii"), value, number))
    return entries


class Server:
    def __init__(self, url, user, password):
        u = urllib.parse.urlsplit(url)
        self.https = u.scheme == "https"
        self.host = u.hostname
        self.port = u.port or (443 if self.https else 80)
        self.hostport = u.netloc
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.key = None

    def connect(self):
        if self.https:
            import ssl

            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=TIMEOUT, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)

    def send(self, method, path, headers, body=b""):
        """Sends one request on a fresh connection; returns (status, headers, body)."""
        conn = self.connect()
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            names = {n.lower() for n, _ in headers}
            if "content-length" not in names:
                headers = headers + [("Content-Length", str(len(body)).encode())]
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders()
            if body:
                conn.send(body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def sign(self, method, path, extra):
        """SigV4 headers for an S3 request with an unsigned payload (the corpus header is not
        signed: a server may refuse it, but must answer)."""
        now = datetime.datetime.now(datetime.timezone.utc)
        date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        signed = [("host", self.hostport), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), ("x-amz-date", date)]
        names = ";".join(n for n, _ in signed)
        canonical_headers = "".join(f"{n}:{v}\n" for n, v in signed)
        canonical = f"{method}\n{path}\n\n{canonical_headers}\n{names}\nUNSIGNED-PAYLOAD"
        scope = f"{day}/us-east-1/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        k = f"AWS4{self.key[1]}".encode()
        for part in (day, "us-east-1", "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        auth = f"AWS4-HMAC-SHA256 Credential={self.key[0]}/{scope}, SignedHeaders={names}, Signature={sig}"
        own = [("Authorization", auth), ("x-amz-date", date), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]
        return [(n, v.encode()) for n, v in own] + extra


def setup(srv):
    """Folders, files, an S3 key and an upload link for the run; returns the link's token."""
    auth = [("Authorization", srv.basic.encode())]

    def must(status, what, ok=(200, 201, 204, 405)):
        if status not in ok:
            sys.exit(f"setup failed: {what} answered {status}")

    for folder in ("/dav/fuzz/", "/dav/fuzzbkt/", "/dav/fuzzdrop/"):
        must(srv.send("MKCOL", folder, auth)[0], f"MKCOL {folder}")
    for path in ("/dav/fuzz/p.txt", "/dav/fuzzbkt/o.txt"):
        must(srv.send("PUT", path, auth, b"replay content\n")[0], f"PUT {path}")
    json_auth = auth + [("Content-Type", b"application/json")]
    status, _, body = srv.send("POST", "/api/v1/me/keys", json_auth, b"{}")
    must(status, "POST /api/v1/me/keys", ok=(200, 201))
    v = json.loads(body)
    srv.key = (v["access_key_id"], v["secret_access_key"])
    link = json.dumps({"path": "/fuzzdrop", "expires_in": 3600, "permission": "upload"}).encode()
    status, _, body = srv.send("POST", "/api/v1/links", json_auth, link)
    must(status, "POST /api/v1/links", ok=(200, 201))
    return json.loads(body)["token"]


def requests_for(srv, token, name, value):
    """(label, method, path, headers, body) of every request one corpus entry is sent with:
    the entry's header replaces a base header of the same name."""
    auth = ("Authorization", srv.basic.encode())

    def with_entry(base):
        kept = [(n, v) for n, v in base if n.lower() != name.lower()]
        return kept + [(name, value)]

    def s3(method, path):
        # A value in place of one the signature covers would only fail the signature (and
        # count against the address): such an entry goes on an anonymous request instead.
        if name.lower() in ("authorization", "host", "x-amz-date", "x-amz-content-sha256"):
            return []
        return srv.sign(method, path, [])

    return [
        ("dav PUT", "PUT", "/dav/fuzz/p.txt", with_entry([auth]), b"replayed\n"),
        ("dav PROPFIND", "PROPFIND", "/dav/fuzz/", with_entry([auth, ("Depth", b"1")]), b""),
        ("dav LOCK", "LOCK", "/dav/fuzz/lockme.txt", with_entry([auth, ("Timeout", b"Second-60")]), LOCK_BODY),
        ("dav COPY", "COPY", "/dav/fuzz/p.txt", with_entry([auth, ("Destination", b"/dav/fuzz/copy.txt")]), b""),
        ("dav MOVE", "MOVE", "/dav/fuzz/copy.txt", with_entry([auth, ("Destination", b"/dav/fuzz/moved.txt")]), b""),
        ("dav GET", "GET", "/dav/fuzz/p.txt", with_entry([auth]), b""),
        ("rest GET", "GET", "/api/v1/files/fuzz/p.txt", with_entry([auth]), b""),
        ("rest PUT", "PUT", "/api/v1/files/fuzz/rest.txt", with_entry([auth]), b"rest\n"),
        ("s3 GET", "GET", "/fuzzbkt/o.txt", with_entry(s3("GET", "/fuzzbkt/o.txt")), b""),
        ("s3 PUT", "PUT", "/fuzzbkt/s3.txt", with_entry(s3("PUT", "/fuzzbkt/s3.txt")), b"s3\n"),
        ("link PUT", "PUT", f"/s/{token}/dropped.txt", with_entry([]), b"dropped\n"),
    ]


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    url, user, password, corpus = sys.argv[1:]
    entries = read_corpus(corpus)
    srv = Server(url, user, password)
    token = setup(srv)
    sent, failures, statuses = 0, [], {}
    for name, value, number in entries:
        for label, method, path, headers, body in requests_for(srv, token, name, value):
            sent += 1
            shown = f"line {number} {name}: {value[:60]!r} via {label}"
            try:
                status, resp_headers, _ = srv.send(method, path, headers, body)
            except ValueError as e:
                # The client library itself refuses to send the value: nothing reached the server.
                statuses["not sent"] = statuses.get("not sent", 0) + 1
                print(f"skipped ({e}): {shown}")
                continue
            except (OSError, http.client.HTTPException) as e:
                failures.append(f"{shown}: no answer ({type(e).__name__}: {e})")
                continue
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500:
                failures.append(f"{shown}: answered {status}")
            if label == "dav LOCK" and status in (200, 201):
                lock = dict((k.lower(), v) for k, v in resp_headers).get("lock-token", "")
                srv.send("UNLOCK", "/dav/fuzz/lockme.txt", [("Authorization", srv.basic.encode()), ("Lock-Token", lock.encode())])
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0])))
    print(f"{len(entries)} corpus entries, {sent} requests; statuses {summary}")
    for f in failures:
        print("FAIL", f)
    if failures:
        print(f"{len(failures)} of {sent} requests failed")
        sys.exit(1)
    print("every request was answered below 500")


if __name__ == "__main__":
    main()
