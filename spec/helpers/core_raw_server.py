#!/usr/bin/env python3
"""A raw TCP server on 127.0.0.1 for the C core's transport-facts specs.

Prints one line once every socket is ready, then serves until SIGTERM or until
its parent goes away:

    READY pid=P port=N refused_port=R blackhole_port=B blackhole=0|1

Paths on port N (the request head is always read in full first):
  /ok         200 with body "ok" and Connection: close
  /keep       200 with body "ok", keeping the connection for the next request
  /huge       200 announcing a 5000000000-byte body, then closes
  /reset      reads the request, then resets the connection (RST, no reply)
  /status000  answers "HTTP/1.1 000 OK", a malformed status line
  /icy        answers "ICY 200 OK", a SHOUTcast status line
A first byte of 0x16 (a TLS ClientHello) gets a plain-HTTP 400, so a TLS client
fails its handshake at once.
refused_port is bound but never listens (SYNs get RST); blackhole_port has a
full accept queue, so a connect there times out.
"""
import os
import select
import signal
import socket
import struct
import sys
import threading

REPLIES = {
    "/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    "/status000": b"HTTP/1.1 000 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    "/icy": b"ICY 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/huge": b"HTTP/1.1 200 OK\r\nContent-Length: 5000000000\r\nConnection: close\r\n\r\nok",
}
KEEP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def serve(conn):
    try:
        data = b""
        while True:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    conn.close()
                    return
                data += chunk
                if data[:1] == b"\x16":
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    conn.close()
                    return
            head, data = data.split(b"\r\n\r\n", 1)
            path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1").split("?")[0]
            if path == "/reset":
                reset(conn)
                return
            if path != "/keep":
                break
            conn.sendall(KEEP)
        conn.sendall(REPLIES.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
        conn.shutdown(socket.SHUT_WR)
        conn.recv(4096)  # waits for the client's close
        conn.close()
    except OSError:
        conn.close()


def make_blackhole():
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers, confirmed = [], False
    for _ in range(64):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        fillers.append(c)
        try:
            c.connect(lst.getsockname())
        except BlockingIOError:
            pass
        if not select.select([], [c], [], 0.2)[1]:
            confirmed = True  # this SYN went unanswered: the queue is full
            break
    return lst, fillers, confirmed


def main():
    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    server.settimeout(0.5)
    refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    refused.bind(("127.0.0.1", 0))
    blackhole, _fillers, confirmed = make_blackhole()
    sys.stdout.write("READY pid=%d port=%d refused_port=%d blackhole_port=%d blackhole=%d\n" % (
        os.getpid(), server.getsockname()[1], refused.getsockname()[1],
        blackhole.getsockname()[1], 1 if confirmed else 0))
    sys.stdout.flush()
    while os.getppid() == parent:
        try:
            conn, _ = server.accept()
        except socket.timeout:
            continue
        conn.settimeout(10)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
