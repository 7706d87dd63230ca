"""A lab backend (``ecs1``..``ecs3``): HTTP on :80 answering its own name, TCP on :443.

Run inside a backend host as ``python backend.py NAME``. The HTTP answer body is
``NAME\\n`` so the client probe can tell which backend HAProxy picked; the :443
listener writes ``NAME\\n`` and closes (HAProxy's ``check`` only needs a connect).
Standard library only: it runs as a plain script.
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading


def serve_tls_port(name: str, port: int = 443) -> None:
    """Accept on ``port`` forever, answer the name and close."""
    srv = socket.create_server(("0.0.0.0", port), backlog=128, reuse_port=False)
    body = f"{name}\n".encode()
    while True:
        conn, _ = srv.accept()
        try:
            conn.sendall(body)
        except OSError:
            pass
        finally:
            conn.close()


def main() -> int:
    """Serve until killed."""
    name = sys.argv[1]
    body = f"{name}\n".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    threading.Thread(target=serve_tls_port, args=(name,), daemon=True).start()
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    httpd = http.server.ThreadingHTTPServer(("0.0.0.0", 80), Handler)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    httpd.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
