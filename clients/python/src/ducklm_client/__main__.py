"""`python -m ducklm_client` is the `ducklm` command."""

from ducklm_client.cli import main

raise SystemExit(main())
