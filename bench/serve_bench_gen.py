#!/usr/bin/env python3
"""Writes signed webhook deliveries for bench/serve_bench: one per line,
"<delivery id>\t<X-Hub-Signature-256>\t<compact JSON body>". Each body is the
real push payload from the shared test data with its own "after", so no two
deliveries share an id or a body (the server would refuse those as replays).
"""
import hashlib
import hmac
import json
import sys

payload_path, secret, count, out_path, prefix = sys.argv[1:6]
base = json.load(open(payload_path))
with open(out_path, "w") as out:
    for i in range(int(count)):
        base["after"] = "%040x" % i
        body = json.dumps(base, separators=(",", ":"))
        sig = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
        out.write("%s-%d\tsha256=%s\t%s\n" % (prefix, i, sig, body))
