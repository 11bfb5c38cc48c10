#!/usr/bin/python3
"""Opens COUNT TLS connections to 127.0.0.1:PORT, sends one keep-alive `GET /` on each and reads
its answer, prints "ready <n>" once all are open and idle, holds them for HOLD seconds, then
closes them. Used by bench/run.sh's idle scenario (memory per idle TLS connection)."""
import socket
import ssl
import sys
import time

port, count, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
conns = []
ok = 0
for _ in range(count):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname="bench.local")
    s.sendall(b"GET / HTTP/1.1\r\nHost: bench.local\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(4096)
        if not d:
            break
        data += d
    if data.startswith(b"HTTP/1.1 200"):
        ok += 1
    conns.append(s)
print(f"ready {ok}", flush=True)
time.sleep(hold)
for s in conns:
    s.close()
