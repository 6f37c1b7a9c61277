"""`python -m projects.cpc_snn_gw <generate|search|evaluate> ...`: the continuous-data search's commands
(`projects.cpc_snn_gw.search_cli`)."""

import sys

from projects.cpc_snn_gw.search_cli import main

if __name__ == "__main__":
    sys.exit(main())
