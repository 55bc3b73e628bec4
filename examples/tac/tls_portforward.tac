# TLS in front of a plain TCP service: connections to port 8443 are decrypted and relayed to
# the backend. The relay counts connections and bytes, and the counts live in its snapshots.
# The key and certificate are PEM files, read when the port is bound (before rtwistd drops
# privileges with -u/-g), so they may be readable by root only.
#
#   TLS_KEY=key.pem TLS_CERT=cert.pem BACKEND=tcp:host=127.0.0.1:port=8080 \
#       rtwistd -n -y examples/tac/tls_portforward.tac
application = Application("tls-forward")

relay = PortForward(dest = env("BACKEND", "tcp:host=127.0.0.1:port=8080"))

SSLServer(
    int(env("TLS_PORT", "8443")),
    relay,
    privateKey = env("TLS_KEY", "/etc/rtwisted/tls/key.pem"),
    certKey = env("TLS_CERT", "/etc/rtwisted/tls/cert.pem"),
    interface = env("TLS_INTERFACE", ""),
    name = "tls",
).setServiceParent(application)
