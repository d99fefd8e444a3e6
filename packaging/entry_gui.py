"""PyInstaller entry point for the `pooldrive-gui` command."""
import sys

from desktop_app.main import main

sys.exit(main())
