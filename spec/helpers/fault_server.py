#!/usr/bin/env python3
"""A raw TCP fault server for the specs: misbehaves on 127.0.0.1 only.

Usage: fault_server.py [--echo TEXT]

Prints one line on stdout once every socket is listening, then serves until
SIGTERM/SIGINT or until its parent process goes away:

    READY pid=P port=N refused_port=R blackhole_port=B blackhole=1

- port: the HTTP fault server. The fault is the second path segment:
  GET /f/<fault>/<anything...>  (the client's endpoint is http://127.0.0.1:N/f/<fault>/<tag>).
  Every request is counted by its path (without the query) once its head is read;
  GET /__stats answers {"<path>": count, ...}.
- refused_port: a socket that is bound but never listens, so every SYN is answered
  with RST ("connection refused") and no other process can take the port.
- blackhole_port: a listener with backlog 0 that never accepts; the server fills its
  accept queue itself, so further SYNs are dropped (a connect timeout).
  blackhole=1 when the filling was confirmed (a probe connection stayed unanswered).

--echo TEXT: every error page and broken body quotes TEXT, as a server that
reflects a secret would (for the secret-leak specs).
"""
import asyncio
import json
import os
import select
import signal
import socket
import struct
import sys

ECHO = ""
COUNTS = {}

AUTH_MESSAGES = [
    "HMAC signature does not match.",
    "HMAC signature cannot be verified.",
    "HMAC signature cannot be verified, the x-date header is out of date for HMAC Authentication.",
    "HMAC signature cannot be verified, a valid x-date header is required for HMAC Authentication.",
    "HMAC signature cannot be verified, a valid date or x-date header is required.",
    "HMAC id or signature missing.",
    "HMAC algorithm hmac-md5 not supported.",
    "HMAC authorization format error.",
    "HMAC signature cannot be verified, a valid x-source header is required.",
    "HMAC apikey is invalid for API.",
]

# 200 answers with valid JSON of the wrong shape.
SHAPES = {
    "data_missing": {"code": "0", "message": "成功"},
    "data_string": {"code": "0", "message": "成功", "data": "ok"},
    "detail_array": {"code": "0", "message": "成功",
                     "data": {"result": "1", "description": "查询成功,有数据", "detail": []}},
    "detail_string": {"code": "0", "message": "成功", "data": {"result": "1", "detail": "ok"}},
    "top_array": [{"code": "0"}],
    "code_missing": {"message": "成功", "data": {"result": "1", "detail": {"resultCode": 1200}}},
    "code_object": {"code": {"value": "0"}, "message": "成功"},
    "ids_wrong_type": {"code": "0", "message": "成功",
                       "data": {"result": "1", "detail": {"resultCode": {"x": 1}, "orderId": {"x": 1}}}},
}


# Status lines libcurl cannot take as HTTP, each sent after the request was
# read, in front of a valid "order placed" answer: the order may well have
# been bought. None = no status line at all (an HTTP/0.9-style bare body).
STATUS_LINES = {
    "http09": None,
    "000": "HTTP/1.1 000 OK",
    "099": "HTTP/1.1 099 OK",
    "1000": "HTTP/1.1 1000 OK",
    "short": "HTTP/1.1 20 OK",
    "http30": "HTTP/3.0 200 OK",
    "http17": "HTTP/1.7 200 OK",
    "icy": "ICY 200 OK",
    "rtsp": "RTSP/1.0 200 OK",
    "garbage": "HELLO THERE",
}

ORDER_PLACED = {"code": "0", "message": "成功", "data": {"result": "1", "description": "查询成功,有数据",
                "detail": {"resultCode": 1200, "resultMsg": "购买成功", "orderId": "d" * 32}}}


def echo_suffix():
    return (" " + ECHO) if ECHO else ""


def head(status, reason, length=None, extra=(), chunked=False):
    lines = ["HTTP/1.1 %d %s" % (status, reason), "Content-Type: text/html; charset=utf-8",
             "X-Api-RequestId: 0123456789abcdef0123456789abcdef", "Connection: close"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif length is not None:
        lines.append("Content-Length: %d" % length)
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def full(status, reason, body):
    if isinstance(body, str):
        body = body.encode()
    return head(status, reason, len(body)) + body


def html_page(status, reason):
    title = "%d %s" % (status, reason)
    return ("<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n"
            "<hr><center>nginx%s</center>\r\n</body>\r\n</html>\r\n") % (title, title, echo_suffix())


def rst_close(writer):
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def read_head(reader):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await reader.read(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > 65536:
            return None
    return data


async def handle(reader, writer):
    try:
        raw = await read_head(reader)
        if raw is None:
            writer.close()
            return
        request_line = raw.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split(" ")
        target = parts[1] if len(parts) > 1 else "/"
        path = target.split("?", 1)[0]
        if path == "/__stats":
            writer.write(full(200, "OK", json.dumps(COUNTS)))
            await writer.drain()
            writer.close()
            return
        COUNTS[path] = COUNTS.get(path, 0) + 1
        segments = path.split("/")
        fault = segments[2] if len(segments) > 2 and segments[1] == "f" else "unknown"
        await FAULTS.get(fault, unknown)(reader, writer, fault)
    except (ConnectionError, OSError):
        writer.transport.abort()
    except asyncio.CancelledError:  # the server is stopping
        writer.transport.abort()


async def unknown(_reader, writer, fault):
    writer.write(full(404, "Not Found", json.dumps({"message": "no such fault: " + fault})))
    await writer.drain()
    writer.close()


async def send_close(writer, data):
    writer.write(data)
    await writer.drain()
    writer.close()


async def read_timeout(reader, writer, _fault):
    # Never answer; hold the connection until the client gives up.
    while await reader.read(4096):
        pass
    writer.close()


async def reset_early(_reader, writer, _fault):
    rst_close(writer)


async def reset_headers(_reader, writer, _fault):
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Len")
    await writer.drain()
    rst_close(writer)


async def reset_body(_reader, writer, _fault):
    body = ('{"code":"0","message":"成功","data":{"result":"1","detail":{"resultCode":1200,'
            '"orderId":"' + "a" * 32 + '"}}}' + echo_suffix()).encode()
    writer.write(head(200, "OK", len(body) + 4096) + body[: len(body) // 2])
    await writer.drain()
    rst_close(writer)


async def truncated(_reader, writer, _fault):
    body = ('{"code":"0","message":"成功","data":{"result":"1","detail":{"resultCode":1200,'
            '"orderId":"' + "b" * 32 + '"}}}' + echo_suffix()).encode()
    # Content-Length promises more than is sent, then a normal close (FIN).
    await send_close(writer, head(200, "OK", len(body) + 100) + body)


async def too_large(_reader, writer, _fault):
    body = ("x" * 65536 + echo_suffix()).encode()
    await send_close(writer, head(200, "OK", len(body)) + body)


async def too_large_chunked(_reader, writer, _fault):
    writer.write(head(200, "OK", chunked=True))
    chunk = b"y" * 8192
    for _ in range(8):
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    writer.close()


async def http_500(_reader, writer, _fault):
    await send_close(writer, full(500, "Internal Server Error", html_page(500, "Internal Server Error")))


async def malformed(_reader, writer, _fault):
    await send_close(writer, full(200, "OK", '{"code":"0","message":"成功","data":{"result":' + echo_suffix()
                                  + "<br/>"))


async def slow_drip(_reader, writer, _fault):
    # A valid answer, one byte every 50 ms: each read sees progress, the whole never fits.
    body = json.dumps({"code": "0", "message": "ok", "data": {"result": "1", "detail": {
        "resultCode": 1200, "orderId": "c" * 32}}}).encode()
    data = head(200, "OK", len(body)) + body
    for i in range(len(data)):
        writer.write(data[i:i + 1])
        await writer.drain()
        await asyncio.sleep(0.05)
    writer.close()


def auth_handler(index):
    async def handler(_reader, writer, _fault):
        message = AUTH_MESSAGES[index] + echo_suffix()
        await send_close(writer, full(401, "Unauthorized", json.dumps({"message": message}, ensure_ascii=False)))
    return handler


def status_message_handler(status, reason, message):
    async def handler(_reader, writer, _fault):
        await send_close(writer, full(status, reason, json.dumps({"message": message + echo_suffix()})))
    return handler


def shape_handler(name):
    async def handler(_reader, writer, _fault):
        value = SHAPES[name]
        if ECHO and isinstance(value, dict):
            value = dict(value, echo=ECHO)
        await send_close(writer, full(200, "OK", json.dumps(value, ensure_ascii=False)))
    return handler


def status_line_handler(name):
    async def handler(_reader, writer, _fault):
        body = json.dumps(ORDER_PLACED, ensure_ascii=False).encode()
        line = STATUS_LINES[name]
        if line is None:
            data = body
        else:
            data = (line + "\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n"
                    "Connection: close\r\n\r\n" % len(body)).encode() + body
        await send_close(writer, data)
    return handler


FAULTS = {
    "read_timeout": read_timeout,
    "reset_early": reset_early,
    "reset_headers": reset_headers,
    "reset_body": reset_body,
    "truncated": truncated,
    "too_large": too_large,
    "too_large_chunked": too_large_chunked,
    "http_500": http_500,
    "malformed": malformed,
    "slow_drip": slow_drip,
    "forbidden_403_format": status_message_handler(403, "Forbidden", "HMAC authorization format error."),
}
for _i in range(len(AUTH_MESSAGES)):
    FAULTS["auth_%d" % (_i + 1)] = auth_handler(_i)
for _name in SHAPES:
    FAULTS["shape_" + _name] = shape_handler(_name)
for _name in STATUS_LINES:
    FAULTS["status_" + _name] = status_line_handler(_name)


def make_blackhole():
    """A listener that never accepts, its accept queue full: new SYNs go unanswered."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    addr = lst.getsockname()
    fillers = []
    confirmed = False
    for _ in range(64):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        fillers.append(c)
        try:
            c.connect(addr)
        except BlockingIOError:
            pass
        _, writable, _ = select.select([], [c], [], 0.2)
        if not writable:
            confirmed = True  # this SYN went unanswered: the queue is full
            break
    return lst, fillers, confirmed


def make_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))  # bound, never listening: SYNs get RST
    return s


async def watch_parent(parent, stop):
    while not stop.is_set():
        if os.getppid() != parent:
            stop.set()
            return
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass


async def main():
    parent = os.getppid()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    refused = make_refused()
    blackhole, fillers, confirmed = make_blackhole()
    sys.stdout.write("READY pid=%d port=%d refused_port=%d blackhole_port=%d blackhole=%d\n" % (
        os.getpid(), port, refused.getsockname()[1], blackhole.getsockname()[1], 1 if confirmed else 0))
    sys.stdout.flush()
    watcher = asyncio.ensure_future(watch_parent(parent, stop))
    await stop.wait()
    watcher.cancel()
    server.close()
    for s in fillers + [blackhole, refused]:
        s.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--echo":
        ECHO = args[1]
    elif args:
        sys.stderr.write(__doc__)
        sys.exit(2)
    asyncio.run(main())
