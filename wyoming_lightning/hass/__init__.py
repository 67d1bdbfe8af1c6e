"""Home Assistant as a place to report to: :mod:`.connection` is the HTTP link (a URL and a
token, reusable for anything the server wants from Home Assistant), :mod:`.sensors` decides
which sensor states to publish and when (no I/O), :mod:`.publisher` carries that out in the
background."""
