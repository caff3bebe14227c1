import sys

from quantserve.cli import main

sys.exit(main())
