# The seed's longer form of the echo example in rtwisted's own names (twisted_echo.tac is the
# seed's text as written): through the application's service collection, with the factory and
# the server in variables of their own.

# Construct the application
application = Application("echo")

# Get the IServiceCollection interface
myService = IServiceCollection(application)

# Create the protocol factory
myFactory = Echo()

# Create the (sole) server
# Normally, the echo protocol lives on port 7, but since that
# is a privileged port, for this example we'll use port 7001
myServer = TCPServer(7001, myFactory)

# Tie the service to the application
myServer.setServiceParent(myService)
