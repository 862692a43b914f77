"""`python -m bounceproc ...` runs the `bounceproc` console command."""
from bounceproc.entrypoints.cli.main import main

raise SystemExit(main())
