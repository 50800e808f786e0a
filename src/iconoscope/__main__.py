"""``python -m iconoscope``: the same command line as the ``iconoscope`` script, for a machine where the package is
on ``PYTHONPATH`` but not installed (a GPU machine without network, see docs/gpu.md)."""

from iconoscope.cli import main

if __name__ == "__main__":
    main()
