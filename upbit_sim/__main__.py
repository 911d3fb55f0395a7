"""``python -m upbit_sim``: run a simulated Upbit until Ctrl-C (see ``upbit_sim.cli``)."""

import sys

from upbit_sim.cli import sim_main

if __name__ == "__main__":
    sys.exit(sim_main())
