"""``python -m sharer.cli`` (what the demo, the tests and the benchmarks start) runs the ``sharer`` command."""

from . import main

main()
