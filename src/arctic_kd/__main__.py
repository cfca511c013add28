import sys

from arctic_kd.cli import main

sys.exit(main())
