"""The deploy package: board table, Vivado Tcl, PYNQ driver files (see package.py)."""
