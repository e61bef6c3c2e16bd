"""model-sidecar's test suite: a package, so `tests.helpers` imports the same way everywhere."""

import pytest

# The helpers assert too: pytest explains their failures as it does a test's own. This must run
# before any helper module is imported, and every such import passes through this package.
pytest.register_assert_rewrite("tests.helpers")
