"""Local emulators of each platform's API, for tests, ``make demo`` and dry runs.

Each speaks its platform's real paths, field names and error shapes, keeps what was published
(``GET /_sandbox/posts``) and takes injected faults (``POST /_sandbox/faults``).
"""
