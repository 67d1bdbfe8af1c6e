"""The status page: a small aiohttp site beside the Wyoming port (``--web-port``; the add-on's
ingress). :mod:`.status` decides what the page shows, :mod:`.mic` what the microphone test may
send, :mod:`.site` carries both over HTTP and WebSocket; ``static/`` is the page itself (plain
HTML, CSS and JavaScript: no build step)."""
