# The seed's echo example (Twisted's "Application / services / persistence" document) in
# rtwisted's own names, with no imports; twisted_echo_short.tac is the seed's text as written.
# A TAC file builds a variable named `application`.
#
#   rtwistd -noy examples/tac/echo.tac      # run it in the foreground, save nothing
#   rtap inspect examples/tac/echo.tac      # the tree it builds
#   rtap save -y examples/tac/echo.tac      # freeze it into echo.tap
application = Application("echo")
TCPServer(7001, Echo()).setServiceParent(application)
