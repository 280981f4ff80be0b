"""A webhook receiver for the tests: verifies every delivery with the Standard Webhooks reference
library (`standardwebhooks` from PyPI) and says what it did, one JSON line per request.

Started with its behaviour (`--fail N`: answer the first N requests 500; `--hang N --hang-for S`:
then hold the next N for S seconds; `--always STATUS`: answer every request STATUS), it binds a
free port, prints {"port": P}, reads the endpoint's secret from its first stdin line, then serves.
Accepted deliveries (verified, answered 204) print their id, order, version and position.
"""
import argparse, json, sys, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from standardwebhooks.webhooks import Webhook

parser = argparse.ArgumentParser()
parser.add_argument("--fail", type=int, default=0)
parser.add_argument("--hang", type=int, default=0)
parser.add_argument("--hang-for", type=float, default=0.0)
parser.add_argument("--always", type=int, default=0)
args = parser.parse_args()

lock = threading.Lock()
state = {"n": 0, "webhook": None}


def say(line):
    with lock:
        print(json.dumps(line), flush=True)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            state["n"] += 1
            n = state["n"]
        if args.always:
            say({"n": n, "outcome": "refused", "status": args.always})
            return self.answer(args.always, b"receiver in maintenance")
        if n <= args.fail:
            say({"n": n, "outcome": "refused", "status": 500})
            return self.answer(500, b"receiver down for maintenance")
        if n <= args.fail + args.hang:
            say({"n": n, "outcome": "hung"})
            time.sleep(args.hang_for)
            try:
                return self.answer(204)
            except OSError:
                return
        try:
            event = state["webhook"].verify(body, dict(self.headers))
        except Exception as error:  # noqa: BLE001 - any failure to verify is reported
            say({"n": n, "outcome": "unverified", "error": str(error)})
            return self.answer(400, b"bad signature")
        say({"n": n, "outcome": "accepted", "id": self.headers["webhook-id"],
             "event_id": event["event_id"], "order_id": event["order_id"],
             "version": event["order_version"], "position": event["position"],
             "event_type": event["event_type"], "signatures": len(self.headers["webhook-signature"].split(" "))})
        self.answer(204)

    def log_message(self, *_):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
say({"port": server.server_address[1]})
state["webhook"] = Webhook(sys.stdin.readline().strip())
server.serve_forever()
