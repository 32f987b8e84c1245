"""``python -m golden``: the command line, with Ctrl-C one line and exit status 130 from
the first instant, imports included (golden.interrupt)."""

from golden import interrupt

interrupt.handle_ctrl_c()
try:
    from golden.cli import main

    interrupt.raise_lost()
    status = main()
except KeyboardInterrupt:
    status = interrupt.tell()
interrupt.end(status)
