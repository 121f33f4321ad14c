"""The command line starts without the heavy libraries: they are imported where they are used."""

import json
import subprocess
import sys

HEAVY = ("sklearn", "matplotlib", "scipy", "pandas", "numpy", "pyarrow")

_PROBE = """
import json, sys
from llmcause.cli import run
code = run({argv!r})
print(json.dumps({{"code": code, "loaded": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def _probe(argv):
    out = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv, heavy=HEAVY)], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_cli_loads_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", f"import sys, llmcause.cli, llmcause.core, llmcause.alignment, "
                          f"llmcause.pretraining, llmcause.runs, llmcause.report\n"
                          f"print([m for m in {HEAVY!r} if m in sys.modules])"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_and_version_load_no_heavy_library():
    for argv in (["--help"], ["--version"], ["alignment", "--help"], ["routing", "learn", "--help"]):
        result = _probe(argv)
        assert result == {"code": 0, "loaded": []}, argv


def test_lazy_names_still_resolve():
    import llmcause
    from llmcause import alignment, core, pretraining, runs

    assert llmcause.EstimateTable is core.EstimateTable
    assert callable(core.aipw) and callable(alignment.style_control) and callable(pretraining.past_runs)
    assert runs.RunStore.__name__ == "RunStore"
    assert set(core.__all__) <= set(dir(core))
