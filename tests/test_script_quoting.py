"""Batch script placeholders: any one-line value reaches the job literally, in every quoting context."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pandaharvester.harvestersubmitter.script_quoting import UnsafeValue, render_script
from pandaharvester.harvestersubmitter.slurm_submitter import render_template

# one line per context; each prints the value between markers (the job's view of it)
CONTEXTS = """#!/bin/bash
# a comment that's got a quote: {v}
printf '<%s>\\n' {v}X
printf '<%s>\\n' "{v}"
printf '<%s>\\n' 'in single quotes {v}'
printf '<%s>\\n' "$(printf '%s' {v})"
printf '<%s>\\n' "`printf '%s' {v}`"
y=`printf '%s' {v}`; printf '<%s>\\n' "$y"
cat <<EOF
<{v}>
EOF
cat <<-'END'
	<{v}>
	END
x={v}; printf '<%s>\\n' "$x"
"""
EXPECTED = ["{v}X", "{v}", "in single quotes {v}", "{v}", "{v}", "{v}", "{v}", "{v}", "{v}"]


def run(script: str, tmp_path) -> list[str]:
    path = tmp_path / "job.sh"
    path.write_text(script)
    proc = subprocess.run(["bash", str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [line[1:-1] for line in proc.stdout.split("\n") if line.startswith("<")]


def check_literal(value: str, tmp_path) -> None:
    got = run(render_script(CONTEXTS, {"v": value}), tmp_path)
    assert got == [want.replace("{v}", value) for want in EXPECTED], value
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("value", ["S$(touch pwned)", "a`touch pwned`b", "x; touch pwned", "x | touch pwned",
                                   "it's \"quoted\" \\ $HOME ${HOME} $((1+1)) & < > ( ) * ? [a] ~ # !",
                                   "EOF", "", "plain-Value_1.2/x:y=z@h%+,"])
def test_metacharacters_reach_the_job_literally(value, tmp_path):
    check_literal(value, tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=30))
def test_any_printable_value_reaches_the_job_literally(tmp_path, value):
    check_literal(value, tmp_path)


def test_plain_values_are_written_as_before():
    template = "#SBATCH -o {ap}/out-%j.txt\necho \"site={site} n={n:03d}\" {ap} '{site}' ${{X}} {{y}}\n"
    values = {"ap": "/tmp/ab/w_1", "site": "ANALY_X-1.2", "n": 7}
    assert render_template(template, values) == \
        "#SBATCH -o /tmp/ab/w_1/out-%j.txt\necho \"site=ANALY_X-1.2 n=007\" /tmp/ab/w_1 'ANALY_X-1.2' ${X} {y}\n"
    # a blank outside quotes would split the value into two words: quoted (for sbatch too)
    assert render_template("#SBATCH -o {ap}/o\ncd {ap}\n", {"ap": "/tmp/a b"}) == \
        "#SBATCH -o \"/tmp/a b\"/o\ncd '/tmp/a b'\n"


def test_control_characters_are_refused_naming_the_placeholder():
    for value in ("a\nb", "a\rb", "a\x00b"):
        with pytest.raises(UnsafeValue, match=r"placeholder computingSite=.*control character"):
            render_script("#SBATCH -J {computingSite}\n", {"computingSite": value})


def test_sbatch_lines_are_quoted_for_sbatch_and_code_params_are_raw():
    out = render_script("#SBATCH -J {v}\n#SBATCH --comment=\"{v}\"\n{cmd}\n", {"v": 'a "b" c', "cmd": "a; b"},
                        ["cmd"])
    assert out == '#SBATCH -J "a \\"b\\" c"\n#SBATCH --comment="a \\"b\\" c"\na; b\n'
    with pytest.raises(UnsafeValue, match="single quotes"):
        render_script("#SBATCH -J '{v}'\n", {"v": "it's"})
