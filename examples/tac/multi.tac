# A multi-service application with named children, built with a loop, a function from
# another file, and settings from the environment:
#
#   /            the application
#   ├── public   the classic small services (echo, discard, daytime, qotd)
#   ├── cache    a key-value server
#   └── heartbeat  touches a file every 10 seconds, for a monitor to watch
#
# With BASE_PORT=0 every server takes a free port (rtwistd logs which).
load("lib/classic.tac", "classic_services")

HOST = env("HOST", "127.0.0.1")
BASE_PORT = int(env("BASE_PORT", "7000"))

def port_of(offset):
    return 0 if BASE_PORT == 0 else BASE_PORT + offset

application = Application("multi", process_name = "multi-rtwistd", umask = 0o027)

classic_services("public", HOST, port_of).setServiceParent(application)

service(
    "tcp:%d:interface=%s" % (port_of(10), HOST),
    Kv(max_value_bytes = 64 * 1024),
    name = "cache",
).setServiceParent(application)

TimerService(
    10,
    TouchFile(path = env("HEARTBEAT_FILE", "multi.heartbeat")),
    name = "heartbeat",
).setServiceParent(application)

# Children are reached by name, as in Twisted.
application.getServiceNamed("public").getServiceNamed("echo")
