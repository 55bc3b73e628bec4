# A key-value server speaking the memcached text protocol, whose data lives in the snapshot.
# A timer asks rtwistd for a checkpoint every 30 seconds (KV_CHECKPOINT_SECONDS), written to
# kv-checkpoint.tap, so a crash loses at most one interval of writes:
#
#   rtwistd -n -y examples/tac/kv.tac              # first run, from this program
#   rtwistd -n -f kv-checkpoint.tap                # after a crash: the data is back
#
# Where it listens comes from the environment, with a loopback default.
application = Application("kv")

store = service(
    env("KV_PORT", "tcp:11211:interface=127.0.0.1"),
    Kv(max_value_bytes = 1024 * 1024),
    name = "kv",
)
store.setServiceParent(application)

TimerService(
    float(env("KV_CHECKPOINT_SECONDS", "30")),
    Checkpoint(),
    name = "checkpoint",
).setServiceParent(application)
