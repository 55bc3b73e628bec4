# A web server as Twisted users write one (twisted.web's Site, File, ReverseProxyResource,
# Data and putChild): a folder at /, an API behind a reverse proxy at /api, a fixed page and
# rtwisted's health check.
#
#   WEB_ROOT=/srv/www API_PORT=8000 rtwistd -noy examples/tac/web.tac
import os
from twisted.application import service, internet
from twisted.web import server, static, proxy

root = static.File(os.environ.get("WEB_ROOT", "/srv/www"))
root.putChild(b"api", proxy.ReverseProxyResource("127.0.0.1", int(os.environ.get("API_PORT", "8000")), b""))
root.putChild(b"hello", static.Data(b"hello from a TAC file\n", "text/plain"))
root.putChild(b"healthz", Health())

application = service.Application("web")
site = server.Site(root)
internet.TCPServer(int(os.environ.get("WEB_PORT", "8080")), site, interface=os.environ.get("WEB_INTERFACE", "")).setServiceParent(application)
