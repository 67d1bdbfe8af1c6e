"""``wyoming-lightning-client``: transcribe a WAV file or the microphone with any Wyoming server.

It speaks to the server the way Home Assistant does (``transcribe``, ``audio-start``, chunks,
``audio-stop``, then ``transcript``), so it is the quickest way to check a server before adding
it to Home Assistant, and it works with every Wyoming speech-to-text server, not only ours.
Unlike Home Assistant it reads while it writes: partial ``transcript-chunk`` results show up
while audio is still going out, and an ``error`` stops the upload at once.

stdout carries only the final text, so ``text=$(wyoming-lightning-client x.wav)`` works;
progress, partial results and errors go to stderr. Exit status: 0 transcribed, 1 the server
failed (its ``error`` text is shown), 2 a local problem (file, microphone, connection, usage),
3 the server answered with empty text (said on stderr: a script must not take silence for a
transcript, and a person must not be left guessing).

The package is split where the jobs separate: :mod:`.args` (the command line), :mod:`.wav` (WAV
files), :mod:`.mic` (the microphone; ``sounddevice`` is imported only for ``--mic`` and comes with
the ``mic`` extra), :mod:`.progress` (what stderr shows), :mod:`.exchange` (one Wyoming request)
and :mod:`.__main__` (the command itself). :mod:`.status` holds the exit codes they share.
"""
