# Helpers shared by TAC files: load("lib/classic.tac", "classic_services").

def classic_services(name, host, port_of):
    """A MultiService of the classic small services, each named after its protocol."""
    group = MultiService(name = name)
    for offset, (label, factory) in enumerate([
        ("echo", Echo()),
        ("discard", Discard()),
        ("daytime", Daytime()),
        ("qotd", Qotd(quotes = ["An apple a day keeps the doctor away."])),
    ]):
        description = "tcp:%d:interface=%s" % (port_of(offset), host)
        service(description, factory, name = label).setServiceParent(group)
    return group
