"""Stage stamps: a stage reruns exactly when its inputs' content or config changes."""

import os

from graphrec.stages import file_signature, run_stage


def test_file_signature_follows_content_not_timestamps(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "copy" / "a.csv"
    a.write_text("user_id,item_id\n1,2\n")
    b.parent.mkdir()
    b.write_bytes(a.read_bytes())
    os.utime(b, ns=(5, 5))
    assert file_signature(a) == file_signature(b)  # copied / re-mounted: same bytes, same signature
    b.write_text("user_id,item_id\n1,3\n")
    assert file_signature(a) != file_signature(b)


def test_run_stage_skips_when_inputs_match(tmp_path):
    calls = []

    def work():
        calls.append(1)
        return {"n": len(calls)}

    logs = []
    run_stage("demo", tmp_path / "out", {"x": 1}, work, log=logs.append)
    run_stage("demo", tmp_path / "out", {"x": 1}, work, log=logs.append)
    assert len(calls) == 1
    run_stage("demo", tmp_path / "out", {"x": 2}, work, log=logs.append)
    run_stage("demo", tmp_path / "out", {"x": 2}, work, force=True, log=logs.append)
    assert len(calls) == 3
