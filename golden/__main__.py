import sys

from golden.cli import main

sys.exit(main())
