"""PyInstaller entry point for the `pooldrive` command."""
import sys

from sync_agent.cli.main import main

sys.exit(main())
