import sys

from responsys_assets.cli import main

sys.exit(main())
