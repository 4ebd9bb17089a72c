import sys

from rtseg.cli import main

sys.exit(main())
