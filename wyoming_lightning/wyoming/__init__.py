"""The Wyoming adapter: the listening server, one handler per connection, the wire limits that
keep a hostile client's events bounded, the zeroconf announcement and a client for a URI.

Named ``wyoming`` after the protocol it speaks; inside it, ``import wyoming`` still means the
``wyoming`` library (imports are absolute)."""
