#!/usr/bin/env python3
"""Attacks on a running `hearth serve` for bench/serve_bench; measures, never asserts.

  serve_bench_attack.py slow PORT SECRET PID [N]   N (default 1030) idle or half-sent
      connections from 127.0.0.2, then one signed delivery from 127.0.0.3: prints how
      many of the slow connections the server still holds, the delivery's status and
      its latency, and the server's RSS.
  serve_bench_attack.py bodies PORT SECRET PID [N] N (default 16) bodies of 16 MiB under a
      wrong signature from 127.0.0.4, all sent but their last byte at once: prints the
      server's RSS before and at the peak, and the answers.
"""
import hashlib
import hmac
import json
import socket
import sys
import time


def rss_mb(pid):
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


def connect(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def status_of(sock, timeout=30):
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionError):
        pass
    return int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0


def signed(port, secret, source, delivery, number):
    body = json.dumps({"ref": "refs/heads/main", "after": "%040x" % number}).encode()
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    head = ("POST /hooks/github HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            "X-GitHub-Event: push\r\nX-GitHub-Delivery: %s\r\nX-Hub-Signature-256: sha256=%s\r\n"
            "Content-Length: %d\r\n\r\n" % (delivery, sig, len(body))).encode()
    start = time.monotonic()
    s = connect(port, source)
    s.sendall(head + body)
    code = status_of(s)
    s.close()
    return code, (time.monotonic() - start) * 1000


def still_open(sock):
    """Open and unanswered: nothing to read yet (an answer or EOF means the server let go)."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def slow(port, secret, pid, n):
    before = rss_mb(pid)
    held = []
    for i in range(n):
        s = connect(port, "127.0.0.2")
        if i % 3 == 1:
            s.sendall(b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Ev")
        elif i % 3 == 2:
            s.sendall(b"POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issues\r\n"
                      b"X-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=00\r\n"
                      b"Content-Length: 100000\r\n\r\n" + b"x" * 50000)
        held.append(s)
    time.sleep(0.5)
    code, ms = signed(port, secret, "127.0.0.3", "attack-slow-%d" % time.time_ns(), 1)
    open_now = sum(1 for s in held if still_open(s))
    print("slow clients: %d connections opened from 127.0.0.2 (a third idle, a third inside the headers, "
          "a third inside a body); the server holds %d of them" % (n, open_now))
    print("slow clients: a signed delivery from 127.0.0.3 during the attack: %d in %.1f ms" % (code, ms))
    print("slow clients: server RSS %.1f MB before, %.1f MB during" % (before, rss_mb(pid)))
    for s in held:
        s.close()


def bodies(port, secret, pid, n):
    size = 16 << 20
    before = rss_mb(pid)
    head = ("POST /hooks/github HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: issues\r\nX-GitHub-Delivery: big\r\n"
            "X-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n" % ("0" * 64, size)).encode()
    chunk = b"a" * (size - 1)
    socks, peak = [], before
    for _ in range(n):
        s = connect(port, "127.0.0.4")
        try:
            s.sendall(head)
            s.sendall(chunk)
        except OSError:
            pass
        socks.append(s)
        peak = max(peak, rss_mb(pid))
    time.sleep(0.3)
    peak = max(peak, rss_mb(pid))
    codes = {}
    for s in socks:
        try:
            s.sendall(b"a")
        except OSError:
            pass
        c = status_of(s)
        codes[c] = codes.get(c, 0) + 1
        s.close()
    print("big bodies: %d x 16 MiB under a wrong signature from one address: server RSS %.1f MB before, "
          "%.1f MB at the peak; answers %s" % (n, before, peak,
                                               ", ".join("%d x %d" % (v, k) for k, v in sorted(codes.items()))))


def main():
    mode, port, secret, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else (1030 if mode == "slow" else 16)
    {"slow": slow, "bodies": bodies}[mode](port, secret, pid, n)


if __name__ == "__main__":
    main()
