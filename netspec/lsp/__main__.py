"""`python -m netspec.lsp` starts the language server on stdio (the same as `netspec lsp`)."""

import sys

from . import main

sys.exit(main())
