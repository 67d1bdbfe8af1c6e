"""Settings: one declaration per setting (:mod:`.declare`), the server's settings and their
loading from flags, variables and files (:mod:`.config`), and what every console script shares
when it reads its arguments (:mod:`.cli`)."""
