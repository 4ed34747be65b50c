"""A local HTTP server of weight files, and a port nothing listens on: downloads in the tests never leave 127.0.0.1."""

import http.server
import socket
import threading

SERVER_TIMEOUT = 10


class WeightServer:
    """A local HTTP server of in-memory files that counts requests per path.

    ``files`` maps a path ('/tiny.h5') to its bytes; a path in ``truncated`` is announced with its
    full Content-Length, but the connection is closed after half of the bytes.
    """

    def __init__(self):
        self.files = {}
        self.truncated = set()
        self.requests = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = SERVER_TIMEOUT

            def do_GET(self):  # noqa: N802 - http.server's naming
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.path in server.truncated:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=SERVER_TIMEOUT)
        return False


def refused_port():
    """A local port nothing listens on: bound, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
