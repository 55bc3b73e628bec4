# A web server as Twisted users write one (twisted.web's Site, File, ReverseProxyResource,
# Data and putChild): a folder at /, an API behind a reverse proxy at /api, a fixed page and a
# health check.
#
#   WEB_ROOT=/srv/www API_PORT=8000 rtwistd -noy examples/tac/web.tac
root = File(env("WEB_ROOT", "/srv/www"))
root.putChild(b"api", ReverseProxyResource("127.0.0.1", int(env("API_PORT", "8000")), b""))
root.putChild(b"hello", Data(b"hello from a TAC file\n", "text/plain"))
root.putChild(b"healthz", Health())

application = Application("web")
site = Site(root)
TCPServer(int(env("WEB_PORT", "8080")), site, interface=env("WEB_INTERFACE", "")).setServiceParent(application)
