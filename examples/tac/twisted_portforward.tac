# A port forward as Twisted users write it: imports, settings from os.environ, and
# internet.TCPServer(port, ProxyFactory(host, port), backlog, interface). It runs as written
# under rtwistd; the relay's connection and byte counters live in its snapshots.
#
#   BACKEND_HOST=10.0.0.5 BACKEND_PORT=8080 rtwistd -noy examples/tac/twisted_portforward.tac
import os

from twisted.application import internet, service
from twisted.protocols.portforward import ProxyFactory

LISTEN_PORT = int(os.environ.get("LISTEN_PORT", "8000"))
LISTEN_INTERFACE = os.environ.get("LISTEN_INTERFACE", "127.0.0.1")
BACKEND_HOST = os.environ.get("BACKEND_HOST", "127.0.0.1")
BACKEND_PORT = int(os.getenv("BACKEND_PORT", "8080"))

application = service.Application("portforward")

forwarder = internet.TCPServer(
    LISTEN_PORT,
    ProxyFactory(BACKEND_HOST, BACKEND_PORT),
    50,
    LISTEN_INTERFACE,
)
forwarder.setName("forward")
forwarder.setServiceParent(application)
