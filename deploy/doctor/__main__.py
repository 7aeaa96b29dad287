"""`python -m deploy.doctor [--json] [--only SECTION] [--role ROLE]`."""

from deploy.doctor.cli import main

raise SystemExit(main())
