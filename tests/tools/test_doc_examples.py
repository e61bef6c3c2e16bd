"""The config examples of the docs are true: check-config outputs shown are what it prints for
the YAML above them, and config examples without one are valid (CI runs the same check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.tools import doc_examples

BROKEN = """\
```yaml
# sidecar.yaml
listn: 127.0.0.1:8788
```

```console
$ model-sidecar check-config sidecar.yaml
sidecar.yaml: 1 error(s):
  this is not what it prints
```
"""


@pytest.mark.slow
def test_the_docs_are_up_to_date() -> None:
    assert doc_examples.main(["--check"]) == 0, "run python -m sidecar.tools.doc_examples"


def test_a_stale_output_is_found_and_regenerated(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(BROKEN)
    assert doc_examples.main(["--check", str(doc)]) == 1
    assert doc_examples.main([str(doc)]) == 0
    text = doc.read_text()
    assert "sidecar.yaml:2: listn: unknown setting; did you mean 'listen'?" in text
    assert doc_examples.main(["--check", str(doc)]) == 0


def test_an_example_that_is_not_a_valid_config_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```yaml\n# sidecar.yaml\nlimits: {connect_timeout_seconds: 0}\n```\n")
    assert doc_examples.main(["--check", str(doc)]) == 1
    assert "the example sidecar.yaml is not a valid config" in capsys.readouterr().err
