#!/usr/bin/python3
"""Small helpers for test-filter.sh (standard library only).

  helper.py port                 print a free TCP port on 127.0.0.1
  helper.py ping-clamd ADDR S    wait up to S seconds for clamd's PONG
  helper.py ping-rspamd PORT S   wait up to S seconds for a /checkv2 reply
  helper.py silent PORTFILE      accept connections, never answer
  helper.py garbage PORTFILE     answer every connection with a bad reply
  helper.py eicar-mime FILE      write a MIME message with EICAR attached
"""
import base64
import socket
import sys
import threading
import time

EICAR = (b'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!'
         b'$H+H*')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(addr):
    if addr.startswith('/'):
        s = socket.socket(socket.AF_UNIX)
        s.connect(addr)
    else:
        host, port = addr.rsplit(':', 1)
        s = socket.create_connection((host, int(port)))
    s.settimeout(5)
    return s


def wait_for(check, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            if check():
                return 0
        except OSError:
            pass
        time.sleep(0.3)
    return 1


def clamd_pong(addr):
    s = connect(addr)
    s.sendall(b'zPING\0')
    reply = s.recv(64)
    s.close()
    return reply == b'PONG\0'


def rspamd_up(port):
    s = connect('127.0.0.1:%d' % port)
    s.sendall(b'POST /checkv2 HTTP/1.1\r\nContent-Length: 0\r\n'
              b'Connection: close\r\n\r\n')
    data = b''
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return b'"action"' in data


def serve(portfile, handler):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', 0))
    srv.listen(16)
    with open(portfile + '.tmp', 'w') as f:
        f.write('%d\n' % srv.getsockname()[1])
    import os
    os.rename(portfile + '.tmp', portfile)
    held = []
    while True:
        c, _ = srv.accept()
        held.append(c)
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def silent(c):
    # Read and discard forever: the client must give up on its own.
    while c.recv(65536):
        pass


def garbage(c):
    c.recv(65536)  # some of the request, then a reply that is not JSON
    c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot json')
    c.close()


def eicar_mime(path):
    body = base64.encodebytes(EICAR).decode()
    msg = ('From: sender@example.org\r\nTo: user@sealpost.test\r\n'
           'Subject: attachment\r\nMessage-ID: <eicar@example.org>\r\n'
           'Date: Mon, 30 Nov 2026 07:00:00 +0000\r\nMIME-Version: 1.0\r\n'
           'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
           '--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
           '--b1\r\nContent-Type: application/octet-stream; name="t.com"\r\n'
           'Content-Transfer-Encoding: base64\r\n'
           'Content-Disposition: attachment; filename="t.com"\r\n\r\n'
           + body.replace('\n', '\r\n') + '--b1--\r\n')
    with open(path, 'w') as f:
        f.write(msg)


def main():
    cmd = sys.argv[1]
    if cmd == 'port':
        print(free_port())
    elif cmd == 'ping-clamd':
        sys.exit(wait_for(lambda: clamd_pong(sys.argv[2]),
                          float(sys.argv[3])))
    elif cmd == 'ping-rspamd':
        sys.exit(wait_for(lambda: rspamd_up(int(sys.argv[2])),
                          float(sys.argv[3])))
    elif cmd == 'silent':
        serve(sys.argv[2], silent)
    elif cmd == 'garbage':
        serve(sys.argv[2], garbage)
    elif cmd == 'eicar-mime':
        eicar_mime(sys.argv[2])
    else:
        sys.exit('unknown command')


if __name__ == '__main__':
    main()
